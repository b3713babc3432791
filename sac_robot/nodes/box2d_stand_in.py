# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Box2D BipedalWalker as a robot: publishes what a walker's drivers would, takes effort commands.

lockstep: one env step per command received, as fast as the collector answers (training in sim);
realtime: a fixed-rate timer steps with the newest command (a deadman zeroes it when commands stop); messages
carry the node clock's time and no /clock is published, as from a robot.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sac_robot.core.config import load_config
from sac_robot.nodes import cdr, cdr_writers
from sac_robot.nodes import ros_io as io
from sac_robot.nodes.spin import run_node
from sac_robot.robot import box2d_walker as walker


class Box2DStandIn(Node):
    def __init__(self) -> None:
        super().__init__("box2d_stand_in")
        self.env_id = self.declare_parameter("env_id", "").value
        config = self.declare_parameter("config", "").value
        if not self.env_id:  # the env of the training config, so one config drives the whole job
            self.env_id = load_config(config).env.id if config else "BipedalWalker-v3"
        self.lockstep = self.declare_parameter("lockstep", True).value
        rate = self.declare_parameter("rate_hz", 50.0).value
        self.declare_parameter("seed", -1)  # set before calling reset to reseed the next episode
        self.declare_parameter("reseed", 0)  # bump to reseed with an unchanged seed (gymnasium's reset(seed=s) twice)
        self.deadman_s = self.declare_parameter("deadman_timeout_s", 0.5).value
        self.env = gym.make(self.env_id, disable_env_checker=True)  # checked in tests; not on every step
        self.dt = 1.0 / walker.FPS
        self.sim_time = 0.0
        self.last_seed: tuple[int, int] | None = None
        self.command = np.zeros(4)
        self.last_command_time = -1.0
        self.done = False
        self.final = (0.0, False, False)  # reward, terminated, truncated of the episode's last step
        self.rejected = 0
        # Each topic's bytes are packed straight from the step's numbers (nodes/cdr_writers.py), skipping
        # rclpy's field-by-field conversion of message objects on every lockstep step.
        self.write_joints = cdr_writers.JointStateWriter(walker.JOINT_NAMES)
        self.write_imu = cdr_writers.ImuWriter("hull")
        self.write_odom = cdr_writers.OdometryWriter("odom", "hull")
        self.write_scan = cdr_writers.LaserScanWriter("hull", walker.LIDAR_RAYS, walker.LIDAR_RANGE)
        self.write_feet = cdr_writers.JointStateWriter(walker.FOOT_NAMES)
        self.write_priv = cdr_writers.Vector3StampedWriter("privileged")
        clock_hz = self.declare_parameter("clock_hz", 10.0).value  # lockstep /clock, Hz of simulated time
        self._zeros2 = np.zeros(2)

        state_qos = io.lockstep_qos(self.lockstep)
        self.pub_joints = self.create_publisher(io.JointState, io.JOINT_STATES, state_qos)
        self.pub_imu = self.create_publisher(io.Imu, io.IMU, state_qos)
        self.pub_odom = self.create_publisher(io.Odometry, io.ODOM, state_qos)
        self.pub_scan = self.create_publisher(io.LaserScan, io.SCAN, state_qos)
        self.pub_feet = self.create_publisher(io.JointState, io.FOOT_CONTACTS, state_qos)
        self.pub_priv = self.create_publisher(io.Vector3Stamped, io.PRIVILEGED, state_qos)
        self.sim_clock = io.SimClock(self, clock_hz) if self.lockstep else None
        self.create_subscription(Float64MultiArray, io.JOINT_COMMANDS, self.on_command, io.COMMAND_QOS, raw=True)
        self.create_service(Trigger, io.RESET, self.on_reset)
        if not self.lockstep:
            self.create_timer(1.0 / rate, self.on_timer)
        self.obs, _ = self.env.reset(seed=self._take_seed())
        self.publish(self.obs, 0.0, False, False)
        self.get_logger().info(f"{self.env_id} stand-in ready ({'lockstep' if self.lockstep else f'{rate} Hz'})")

    def _take_seed(self) -> int | None:
        """The seed for this reset if (seed, reseed) changed since the last one; else the env's RNG continues."""
        key = (self.get_parameter("seed").value, self.get_parameter("reseed").value)
        if key[0] >= 0 and key != self.last_seed:
            self.last_seed = key
            return int(key[0])
        return None

    def on_command(self, data: bytes) -> None:
        """Read raw (nodes/cdr.py): the command's numbers without building a message object."""
        try:
            cmd = cdr.float64_multi_array(data)
        except cdr.CdrError as err:
            self._reject(str(err))
            return
        if cmd.shape != (4,) or not np.isfinite(cmd).all():
            self._reject(f"need 4 finite efforts, got {cmd.shape}")
            return
        self.command = cmd
        self.last_command_time = self.get_clock().now().nanoseconds * 1e-9
        if self.lockstep:
            self.advance()

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.get_logger().warning(f"joint_commands rejected: {why}", throttle_duration_sec=1.0)

    def on_timer(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        if now - self.last_command_time > self.deadman_s:
            self.command = np.zeros(4)  # deadman: no fresh command, no torque
        self.advance()

    def advance(self) -> None:
        if self.done:  # the episode is over: wait for the reset service
            if not self.lockstep:  # real time: keep reporting the final state, as a fallen robot's drivers do
                self.publish(self.obs, *self.final)  # the same signals: a reader that missed one loses nothing
            return
        action = np.clip(self.command / walker.MOTORS_TORQUE, -1.0, 1.0)
        self.obs, reward, terminated, truncated, _ = self.env.step(action.astype(np.float32))
        self.done = terminated or truncated
        self.final = (float(reward), bool(terminated), bool(truncated))
        self.sim_time += self.dt
        self.publish(self.obs, float(reward), terminated, truncated)

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.obs, _ = self.env.reset(seed=self._take_seed())
        self.done = False
        self.command = np.zeros(4)
        self.sim_time += self.dt  # the first state of an episode is a new instant, never a repeated stamp
        self.publish(self.obs, 0.0, False, False)
        response.success, response.message = True, f"reset at t={self.sim_time:.2f}"
        return response

    def publish(self, obs: np.ndarray, reward: float, terminated: bool, truncated: bool) -> None:
        """The step's messages, the ones a collector waits for first; /clock last, off the lockstep's critical
        path (a lockstep collector pairs messages by their stamps, not by the clock)."""
        # Lockstep: simulated time (with /clock); real time: the node's clock, as a robot's driver stamps.
        t = self.sim_time if self.lockstep else self.get_clock().now().nanoseconds * 1e-9
        s = walker.obs_to_state(obs, self.command, t)
        self.pub_joints.publish(self.write_joints(t, s.joint_position, s.joint_velocity, s.joint_effort))
        self.pub_imu.publish(self.write_imu(t, s.imu_orientation, s.imu_angular_velocity, s.imu_linear_acceleration))
        hull = self.env.unwrapped.hull.position  # Box2D (x, y-up) → odom (x, 0, z-up)
        self.pub_odom.publish(self.write_odom(t, (hull[0], 0.0, hull[1]), s.imu_orientation, s.base_linear_velocity))
        self.pub_scan.publish(self.write_scan(t, s.scan))
        self.pub_feet.publish(self.write_feet(t, s.foot_contact, self._zeros2, self._zeros2))
        self.pub_priv.publish(self.write_priv(t, float(reward), float(terminated), float(truncated)))
        if self.sim_clock is not None:  # last: a lockstep collector pairs messages by stamp, not by clock
            self.sim_clock.tick(t)


def main(args: list[str] | None = None) -> int:
    return run_node(Box2DStandIn, args)


if __name__ == "__main__":
    sys.exit(main())
