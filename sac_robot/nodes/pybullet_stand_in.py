# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A PyBullet legged robot as a ROS robot: publishes what a legged robot's drivers would, takes joint commands.

    joint_commands (Float64MultiArray, description joint order) → position targets or efforts
    joint_states, imu/data, odom, foot_contacts, privileged/step, /clock (lockstep), /diagnostics
    reset (Trigger): teleport home (simulation) or refuse (emulated hardware); sim/teleport_reset (Trigger)

lockstep: each command advances physics_hz/control_rate_hz physics steps, then everything is published
stamped with simulated time (and /clock), as fast as the collector answers: training in simulation.
realtime: a wall-clock timer keeps physics in step with wall time and publishes at the control rate,
stamped with wall time; a deadman puts the robot in safe mode (joint damping) when commands stop for
deadman_timeout_s, until they resume. Without commands physics cannot advance in lockstep, so the deadman
only runs in real time; it is armed by the first command after start-up or a reset (until then the
joints' PD controllers hold the pose the robot was placed in).
emulate_hardware: real time with sensor noise and latency (the ``sensor_noise.*`` parameters, or the
defaults below), and the reset service refuses to teleport, as a real robot cannot: resets go through the
collector's reset routine; ``sim/teleport_reset`` rights the robot for a test or a person.

Parameters: config (training config; default quadruped), robot (description name or YAML; default the
config's robot.description), lockstep (default the config's robot.lockstep), physics_hz (500),
control_rate_hz (default the config's robot.control_rate_hz; physics_hz must be a whole multiple),
control_mode (position|effort; default the config's robot.action.mode), seed (-1: unseeded; >= 0 seeds the
sensor noise, a changed value reseeds at the next reset), deadman_timeout_s (0.5), emulate_hardware (false),
initial_pose (home|side), sensor_noise.{std,bias}.<field>, sensor_noise.dropout, sensor_noise.latency_steps.

privileged/step carries reward/terminated/truncated computed exactly as LeggedEnv computes them (the same
compute_reward and check_fall on the same reading, action = the command mapped back to [-1, 1]), so numbers
from this node and from the in-process environment can be compared. Odometry is the simulator's ground
truth pose (with whatever odometry noise the sensor_noise parameters add: none by default); foot contact
normal forces are the current contact solver's, not delayed.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock as RclpyClock
from rclpy.clock import ClockType
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sac_robot.nodes import ros_io as io
from sac_robot.nodes.spin import run_node
from sac_robot.robot.description import load_robot
from sac_robot.robot.pipeline import load_job
from sac_robot.robot.rewards import RewardConfig
from sac_robot.robot.robot_step import reward_and_fall
from sac_robot.robot.state import RobotState
from sac_robot.robot.terminations import TerminationConfig
from sac_robot.sim.pybullet_robot import NoisyField, PyBulletRobot, SensorNoise

NO_TELEPORT = "no teleporting reset on emulated hardware; use the routine reset"
TELEPORT_RESET = "sim/teleport_reset"
SIDE_ORIENTATION = np.array([math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)])  # rolled 90° about x
INITIAL_POSES = ("home", "side")
REALTIME_TICK_HZ = 100.0  # physics catches up with wall time this often in real time (commands take effect then)
MAX_BACKLOG_S = 0.25  # further behind wall time than this (a loaded machine): let simulated time slip instead
NOISY_FIELDS: tuple[str, ...] = NoisyField.__args__
# emulate_hardware defaults: a typical small quadruped's sensors. Encoders quantise, velocities are
# differentiated encoder counts, efforts come from motor currents; a MEMS IMU has noise and a gyro bias.
# Odometry stays ground truth (as from motion capture); everything arrives 5 physics steps (10 ms) late.
EMULATED_STD = {
    "joint_position": 0.002,  # rad
    "joint_velocity": 0.05,  # rad/s
    "joint_effort": 0.3,  # N·m
    "imu_orientation": 0.005,  # rad
    "imu_angular_velocity": 0.02,  # rad/s
    "imu_linear_acceleration": 0.1,  # m/s²
}
EMULATED_BIAS = {"imu_angular_velocity": 0.005}  # rad/s gyro bias
EMULATED_DROPOUT = 0.002  # a sensor group repeats its previous reading this often
EMULATED_LATENCY_STEPS = 5


def _flexible(description: str) -> ParameterDescriptor:
    """Numbers given as 20 or 20.0 on the command line are both accepted."""
    return ParameterDescriptor(description=description, dynamic_typing=True)


class PyBulletStandIn(Node):
    def __init__(self) -> None:
        super().__init__("pybullet_stand_in")
        config = self.declare_parameter("config", "quadruped").value
        robot_name = self.declare_parameter("robot", "").value
        self.rc = load_job(config).pipe.cfg
        self.description = load_robot(robot_name or self.rc.description)
        self.emulate = bool(self.declare_parameter("emulate_hardware", False).value)
        lockstep = bool(self.declare_parameter("lockstep", self.rc.lockstep).value)
        if self.emulate and lockstep:
            self.get_logger().warning("emulate_hardware runs in real time: ignoring lockstep:=true")
            lockstep = False
        self.lockstep = lockstep
        self.physics_hz = float(self.declare_parameter("physics_hz", 500.0, _flexible("physics steps per s")).value)
        self.control_hz = float(
            self.declare_parameter("control_rate_hz", self.rc.control_rate_hz, _flexible("control steps per s")).value
        )
        self.control_mode = self.declare_parameter("control_mode", self.rc.action.mode).value
        if self.control_mode not in ("position", "effort"):
            raise ValueError(f"control_mode must be 'position' or 'effort', got {self.control_mode!r}")
        self.declare_parameter("seed", -1)  # >= 0: seeds the sensor noise; a changed value reseeds at the next reset
        self.deadman_s = float(self.declare_parameter("deadman_timeout_s", 0.5, _flexible("s without commands")).value)
        self.initial_pose = self.declare_parameter("initial_pose", "home").value
        if self.initial_pose not in INITIAL_POSES:
            raise ValueError(f"initial_pose must be one of {list(INITIAL_POSES)}, got {self.initial_pose!r}")
        if self.control_hz <= 0 or self.physics_hz <= 0:
            raise ValueError(f"physics_hz ({self.physics_hz}) and control_rate_hz ({self.control_hz}) must be positive")
        ratio = self.physics_hz / self.control_hz
        self.substeps = round(ratio)
        if self.substeps < 1 or abs(ratio - self.substeps) > 1e-9:
            raise ValueError(
                f"physics_hz ({self.physics_hz}) must be a whole multiple of control_rate_hz ({self.control_hz})"
            )
        noise = self._sensor_noise()

        # Reward and termination as LeggedEnv computes them; 'privileged' means nothing here: defaults.
        self.reward_cfg = self.rc.reward if isinstance(self.rc.reward, RewardConfig) else RewardConfig()
        self.term_cfg = (
            self.rc.termination if isinstance(self.rc.termination, TerminationConfig) else TerminationConfig()
        )
        self.max_episode_steps = max(1, round(self.rc.episode_seconds * self.control_hz))
        self.home = self.description.array("home")
        self.effort_limit = self.description.array("effort")
        self.action_scale = self.rc.action.scale
        self.n = len(self.description.joints)

        self.last_seed: int | None = None
        seed = self._take_seed()
        self.robot = PyBulletRobot(
            self.description, physics_hz=self.physics_hz, control_mode=self.control_mode, sensor_noise=noise, seed=seed
        )
        self.dt = self.robot.dt
        self._foot_links = self._find_foot_links()

        self.total_steps = 0  # physics steps since start, never reset: simulated time for stamps and /clock
        self.episode_steps = 0
        self.prev_action = np.zeros(self.n)
        self.command = self._rest_command()
        self.commands_received = 0
        self.rejected = 0
        self.resets = 0
        self.teleports_refused = 0
        self.deadman_active = False
        self.deadman_trips = 0
        self.last_command_time: float | None = None  # monotonic; None: deadman not armed
        self.overruns = 0
        self.phase = 0  # real time: physics steps into the current control period
        # real time: wall time at which physics step rt_steps == 0 was due (set by the first tick)
        self.rt_origin: float | None = None
        self.rt_steps = 0
        self._rtf_mark = (time.monotonic(), 0)

        state_qos = io.lockstep_qos(self.lockstep)
        self.pub_joints = self.create_publisher(io.JointState, io.JOINT_STATES, state_qos)
        self.pub_imu = self.create_publisher(io.Imu, io.IMU, state_qos)
        self.pub_odom = self.create_publisher(io.Odometry, io.ODOM, state_qos)
        self.pub_feet = self.create_publisher(io.JointState, io.FOOT_CONTACTS, state_qos)
        self.pub_priv = self.create_publisher(io.Vector3Stamped, io.PRIVILEGED, state_qos)
        self.pub_diag = self.create_publisher(io.DiagnosticArray, "/diagnostics", 10)
        clock_hz = float(
            self.declare_parameter("clock_hz", 10.0, _flexible("lockstep /clock rate, Hz of sim time")).value
        )
        self.sim_clock = io.SimClock(self, clock_hz) if self.lockstep else None
        self.create_subscription(Float64MultiArray, io.JOINT_COMMANDS, self.on_command, io.COMMAND_QOS)
        self.create_service(Trigger, io.RESET, self.on_reset)
        self.create_service(Trigger, TELEPORT_RESET, self.on_teleport_reset)
        steady = RclpyClock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, self.on_diagnostics, clock=steady)
        if not self.lockstep:
            self.create_timer(1.0 / max(REALTIME_TICK_HZ, self.control_hz), self.on_tick, clock=steady)

        self._place(initial=True)
        state = self.robot.state()
        self.publish(state, self._stamp(), 0.0, False, False)
        mode = "lockstep" if self.lockstep else f"real time, {self.control_hz:g} Hz"
        self.get_logger().info(
            f"{self.description.name} stand-in ready ({mode}, {self.control_mode} control, {self.physics_hz:g} Hz "
            f"physics{', emulating hardware' if self.emulate else ''}, initial pose {self.initial_pose})"
        )

    # ------------------------------------------------------------------ set-up

    def _sensor_noise(self) -> SensorNoise:
        """The ``sensor_noise.*`` parameter set; its defaults are EMULATED_* on emulated hardware, else ideal."""
        std, bias = (EMULATED_STD, EMULATED_BIAS) if self.emulate else ({}, {})
        values: dict[str, dict[str, float]] = {"std": {}, "bias": {}}
        for kind, defaults in (("std", std), ("bias", bias)):
            for name in NOISY_FIELDS:
                if kind == "bias" and name == "imu_orientation":
                    continue  # unsupported by SensorNoise: a fixed mounting error belongs in the URDF
                value = float(
                    self.declare_parameter(
                        f"sensor_noise.{kind}.{name}", defaults.get(name, 0.0), _flexible(kind)
                    ).value
                )
                if value != 0.0:
                    values[kind][name] = value
        dropout = self.declare_parameter(
            "sensor_noise.dropout", EMULATED_DROPOUT if self.emulate else 0.0, _flexible("probability")
        ).value
        latency = self.declare_parameter(
            "sensor_noise.latency_steps", EMULATED_LATENCY_STEPS if self.emulate else 0, _flexible("physics steps")
        ).value
        return SensorNoise(std=values["std"], bias=values["bias"], dropout=float(dropout), latency_steps=int(latency))

    def _find_foot_links(self) -> list[int]:
        bc = self.robot.client
        links = {
            bc.getJointInfo(self.robot.body_id, i)[12].decode(): i for i in range(bc.getNumJoints(self.robot.body_id))
        }
        return [links[name] for name in self.description.feet]

    def _take_seed(self) -> int | None:
        seed = self.get_parameter("seed").value
        if seed >= 0 and seed != self.last_seed:
            self.last_seed = seed
            return int(seed)
        return None

    def _rest_command(self) -> np.ndarray:
        """What the robot does after a reset until commanded: hold home (position) or no torque (effort)."""
        return self.home.copy() if self.control_mode == "position" else np.zeros(self.n)

    def _place(self, initial: bool = False, seed: int | None = None) -> None:
        """Put the robot at rest at home (or on its side at start-up) and start a new episode."""
        orientation = SIDE_ORIENTATION if initial and self.initial_pose == "side" else None
        self.robot.reset(seed=seed, base_orientation=orientation)
        self.episode_steps = 0
        self.prev_action = np.zeros(self.n)
        self.command = self._rest_command()
        self.deadman_active = False  # reset() leaves safe mode; the deadman re-arms with the next command
        self.last_command_time = None

    # ------------------------------------------------------------------ commands and stepping

    def on_command(self, msg: Float64MultiArray) -> None:
        cmd = np.asarray(msg.data, dtype=np.float64)
        if cmd.shape != (self.n,) or not np.all(np.isfinite(cmd)):
            self.rejected += 1
            why = "non-finite values" if cmd.shape == (self.n,) else f"{cmd.size} values"
            self.get_logger().warning(
                f"joint_commands rejected ({self.rejected} so far): need {self.n} finite {self.control_mode} "
                f"commands in description joint order, got {why}",
                throttle_duration_sec=1.0,
            )
            return
        self.robot.set_command(cmd)
        self.command = cmd
        self.commands_received += 1
        self.last_command_time = time.monotonic()
        if self.deadman_active:
            self.deadman_active = False
            self.robot.resume()
            self.get_logger().info("commands resumed: deadman released")
        if self.lockstep:
            self.robot.step(self.substeps)
            self.total_steps += self.substeps
            self.control_step(self._stamp())

    def on_tick(self) -> None:
        """Real time: advance physics to wall time, publishing at every control-period boundary."""
        now = time.monotonic()
        self._check_deadman(now)
        if self.rt_origin is None:
            self.rt_origin = now  # physics starts with the first tick, not when the node was built
            return
        owed = int((now - self.rt_origin) * self.physics_hz) - self.rt_steps
        if owed > MAX_BACKLOG_S * self.physics_hz:  # cannot keep up: finish this period and let time slip
            self.overruns += 1
            self.get_logger().warning("physics is behind wall time: simulated time slips", throttle_duration_sec=5.0)
            owed = self.substeps - self.phase
            self.rt_origin = now - (self.rt_steps + owed) / self.physics_hz
        while owed > 0:
            n = min(owed, self.substeps - self.phase)
            self.robot.step(n)
            owed -= n
            self.rt_steps += n
            self.total_steps += n
            self.phase = (self.phase + n) % self.substeps
            if self.phase == 0:
                self.control_step(self._stamp())

    def _check_deadman(self, now: float) -> None:
        if self.deadman_active or self.last_command_time is None:
            return
        silent = now - self.last_command_time
        if silent > self.deadman_s:
            self.deadman_active = True
            self.deadman_trips += 1
            self.robot.safe_mode()
            self.get_logger().warning(
                f"deadman: no joint_commands for {silent:.2f} s (timeout {self.deadman_s:.2f} s): safe mode "
                f"(joint damping) until commands resume [{self.deadman_trips} trip(s)]"
            )

    def _action(self) -> np.ndarray:
        """The command in force, as the normalised action a policy would have sent (LeggedEnv's convention)."""
        if self.control_mode == "effort":
            a = self.command / self.effort_limit
        else:
            a = (self.command - self.home) / self.action_scale
        return np.clip(a, -1.0, 1.0)

    def control_step(self, stamp: float) -> None:
        state = self.robot.state()
        action = self._action()
        reward, _, fall = reward_and_fall(
            self.reward_cfg, self.term_cfg, self.description, state, action, self.prev_action
        )
        terminated = fall is not None
        self.prev_action = action
        self.episode_steps += 1
        truncated = not terminated and self.episode_steps >= self.max_episode_steps
        self.publish(state, stamp, reward, terminated, truncated)

    def _stamp(self) -> float:
        if self.lockstep:
            return self.total_steps * self.dt
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ resets

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.emulate:
            self.teleports_refused += 1
            response.success, response.message = False, NO_TELEPORT
            return response
        return self.on_teleport_reset(request, response)

    def on_teleport_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._place(seed=self._take_seed())
        self.resets += 1
        if self.lockstep:
            self.total_steps += self.substeps  # the first state of an episode is a new instant, never a repeated stamp
        else:
            self.phase = 0  # a fresh control period starts now
            self.rt_origin, self.rt_steps = None, 0
        stamp = self._stamp()
        self.publish(self.robot.state(), stamp, 0.0, False, False)
        response.success, response.message = True, f"teleported to the home pose at t={stamp:.3f}"
        return response

    # ------------------------------------------------------------------ publishing

    def _base_orientation(self) -> np.ndarray:
        """Ground-truth orientation of base_link (PyBullet reports the base's inertial frame)."""
        bc, body = self.robot.client, self.robot.body_id
        com_pos, com_orn = bc.getBasePositionAndOrientation(body)
        inertial_pos, inertial_orn = bc.getDynamicsInfo(body, -1)[3:5]
        _, orn = bc.multiplyTransforms(com_pos, com_orn, *bc.invertTransform(inertial_pos, inertial_orn))
        return np.array(orn)

    def _foot_forces(self) -> np.ndarray:
        bc, body, plane = self.robot.client, self.robot.body_id, self.robot.plane_id
        return np.array(
            [
                sum(c[9] for c in bc.getContactPoints(bodyA=body, bodyB=plane, linkIndexA=link))
                for link in self._foot_links
            ]
        )

    def publish(self, state: RobotState, stamp: float, reward: float, terminated: bool, truncated: bool) -> None:
        d = self.description
        self.pub_joints.publish(
            io.joint_state_msg(d.joint_names, state.joint_position, state.joint_velocity, state.joint_effort, stamp)
        )
        self.pub_imu.publish(
            io.imu_msg(
                state.imu_orientation, state.imu_angular_velocity, state.imu_linear_acceleration, stamp, d.imu_link
            )
        )
        self.pub_odom.publish(
            io.odom_msg(
                state.base_position, self._base_orientation(), state.base_linear_velocity, stamp, "odom", d.base_link
            )
        )
        if d.feet:
            feet = len(d.feet)
            self.pub_feet.publish(
                io.joint_state_msg(d.feet, state.foot_contact, np.zeros(feet), self._foot_forces(), stamp)
            )
        self.pub_priv.publish(io.privileged_msg(reward, terminated, truncated, stamp))
        if self.sim_clock is not None:  # last: a lockstep collector pairs messages by stamp, not by clock
            self.sim_clock.tick(stamp)

    def on_diagnostics(self) -> None:
        now = time.monotonic()
        wall = now - self._rtf_mark[0]
        rtf = (self.total_steps - self._rtf_mark[1]) * self.dt / wall if wall > 0 else 0.0
        self._rtf_mark = (now, self.total_steps)
        values = {
            "mode": "lockstep" if self.lockstep else ("emulated hardware" if self.emulate else "real time"),
            "control_mode": self.control_mode,
            "commands_received": self.commands_received,
            "rejected": self.rejected,
            "deadman_active": str(self.deadman_active).lower(),
            "deadman_trips": self.deadman_trips,
            "sim_time": f"{self.total_steps * self.dt:.3f}",
            "real_time_factor": f"{rtf:.3f}",
            "episode_steps": self.episode_steps,
            "resets": self.resets,
            "teleports_refused": self.teleports_refused,
            "overruns": self.overruns,
        }
        level, message = (1, "deadman: safe mode, no commands") if self.deadman_active else (0, "ok")
        name = f"sac_robot/pybullet_stand_in{self.get_namespace().rstrip('/')}"
        stamp = self.get_clock().now().nanoseconds * 1e-9
        self.pub_diag.publish(io.diagnostics_msg(name, self.description.name, level, message, values, stamp))

    def close(self) -> None:
        self.robot.close()


def main(args: list[str] | None = None) -> int:
    return run_node(PyBulletStandIn, args)


if __name__ == "__main__":
    sys.exit(main())
