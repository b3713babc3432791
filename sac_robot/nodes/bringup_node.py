# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Bring-up node: before any learning, prove that the joint mapping is what the robot description says.

    joint_states, imu/data                       → RobotState (ros_io; joints mapped by name)
    BringupCheck.tick (one joint at a time, small and slow, in real time)
        → SafetyLayer.filter                     → joint_commands (position targets, description order)
    sac_robot/estop and /sac_robot/estop (Bool, any QoS) → abort: the safety layer holds, the check fails

The check moves each joint in turn by a small amount and back and compares the measured joint states with
the command: a swapped joint order, a reversed direction or a wrong scale is named with its joint. When it
is done the node stops; ``main`` prints a per-joint report and returns 0 (every joint passed) or 1 (the
failing joint is named). Nothing else may command the robot meanwhile (a collector stays unarmed).

Parameters: config (training config; its robot section gives the description, control rate and safety
limits), amplitude, speed, settle_s, tolerance, limit_margin (BringupConfig; defaults there),
sensor_wait_s (10: give up when joint_states or IMU do not arrive). Run it with
``sac-robot bringup --config CFG [--namespace NS]``.
"""

from __future__ import annotations

import sys
import time

import rclpy
import rclpy.context
import rclpy.executors
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64MultiArray

from sac_robot.core.config import ConfigError
from sac_robot.nodes import ros_io as io
from sac_robot.nodes.safety_topics import EstopStartup, QosWatch, command_publisher, subscribe_estop
from sac_robot.robot.bringup import BringupCheck, BringupConfig
from sac_robot.robot.pipeline import load_job
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState

PASSED, FAILED = 0, 1


def _flexible(description: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=description, dynamic_typing=True)


class BringupNode(Node):
    def __init__(self, context: rclpy.context.Context | None = None) -> None:
        super().__init__("bringup", context=context)
        config = str(self.declare_parameter("config", "quadruped_hw").value)
        defaults = BringupConfig()
        check_cfg = BringupConfig(
            **{
                key: float(self.declare_parameter(key, getattr(defaults, key), _flexible(key)).value)
                for key in BringupConfig.model_fields
            }
        )
        self.sensor_wait_s = float(self.declare_parameter("sensor_wait_s", 10.0, _flexible("s")).value)
        self.pipe = load_job(config).pipe
        rc = self.pipe.cfg
        if rc.action.mode != "position":
            raise ConfigError("bring-up moves joints by position targets: it needs robot.action.mode: position")
        self.description = self.pipe.description
        self.period = 1.0 / rc.control_rate_hz
        self.safety = SafetyLayer(rc.safety, self.description, self.period)
        self.check = BringupCheck(check_cfg, self.description, self.period)
        self.joints = io.JointOrder(self.description.joint_names, io.JOINT_STATES)
        self.latest: dict[str, object] = {}
        self.stamps: dict[str, float] = {}
        self.bad_messages = 0
        self.safe_mode_steps = 0
        self.exit_code: int | None = None
        self.verdict = "not started"
        self.failed_joint: str | None = None
        self.started = time.monotonic()

        self.qos_watch = QosWatch(self)
        self.pub_cmd = command_publisher(self, self.qos_watch)
        for msg_type, topic, callback in (
            (io.JointState, io.JOINT_STATES, self.on_joint_states),
            (io.Imu, io.IMU, self.on_imu),
        ):
            events = self.qos_watch.subscription(topic, io.SENSOR_QOS)
            self.create_subscription(msg_type, topic, callback, io.SENSOR_QOS, event_callbacks=events)
        subscribe_estop(self, self.on_estop, self.qos_watch)
        self.estop_startup = EstopStartup(self, self.safety)  # nothing moves before the e-stop state is known
        self.create_timer(self.period, self.on_tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"bring-up of {self.description.name}: {len(self.description.joints)} joints, "
            f"±{check_cfg.amplitude:.2f} rad at {check_cfg.speed:.2f} rad/s, {rc.control_rate_hz:g} Hz"
        )

    # --- sensors -------------------------------------------------------------------------------
    def _store(self, key: str, value: object, stamp: float) -> None:
        self.latest[key] = value
        self.stamps[key] = stamp
        self.safety.note_sensor(key, stamp)

    def on_joint_states(self, msg: io.JointState) -> None:
        try:
            self._store("joint_states", self.joints.read(msg), io.from_time(msg.header.stamp))
        except io.MessageError as err:
            self.bad_messages += 1
            self.get_logger().warning(f"message rejected: {err}", throttle_duration_sec=1.0)

    def on_imu(self, msg: io.Imu) -> None:
        try:
            self._store("imu", io.read_imu(msg), io.from_time(msg.header.stamp))
        except io.MessageError as err:
            self.bad_messages += 1
            self.get_logger().warning(f"message rejected: {err}", throttle_duration_sec=1.0)

    def on_estop(self, pressed: bool) -> None:
        self.safety.estop(pressed, self._now())

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _state(self) -> RobotState:
        latest = {k: self.latest[k] for k in ("joint_states", "imu")}  # bring-up reads joints and IMU only
        return io.robot_state(latest, max(self.stamps["joint_states"], self.stamps["imu"]))

    # --- the check, one control period at a time -----------------------------------------------
    def on_tick(self) -> None:
        if self.exit_code is not None:
            return
        if "joint_states" not in self.latest or "imu" not in self.latest:
            if time.monotonic() - self.started > self.sensor_wait_s:
                missing = [k for k in ("joint_states", "imu") if k not in self.latest]
                self._finish(FAILED, f"no {' or '.join(missing)} message within {self.sensor_wait_s:g} s")
            return
        if not self.safety.estop_known:
            return  # the start-up grace: a latched e-stop may still be on its way
        state = self._state()
        step = self.check.tick(time.monotonic(), state)
        if step.command is not None:
            result = self.safety.filter(step.command, state, self._now())
            self.pub_cmd.publish(Float64MultiArray(data=result.command.tolist()))
            self.safe_mode_steps += int(result.safe_mode)
        if self.safety.estop_latched:
            self.failed_joint = step.joint
            self._finish(FAILED, f"e-stop pressed during the check of {step.joint or 'the start pose'}: aborted")
        elif step.done:
            self.failed_joint = None if step.passed else step.joint
            self._finish(PASSED if step.passed else FAILED, step.message)

    def _finish(self, code: int, verdict: str) -> None:
        self.exit_code, self.verdict = code, verdict

    # --- the report ----------------------------------------------------------------------------
    def report_text(self) -> str:
        rows = [f"{'joint':<20} {'status':<11} {'commanded':>10} {'measured':>10}  message"]
        for name, entry in self.check.report().items():
            cmd = "" if entry["commanded"] is None else f"{entry['commanded']:+.3f}"
            got = "" if entry["measured"] is None else f"{entry['measured']:+.3f}"
            rows.append(f"{name:<20} {entry['status']:<11} {cmd:>10} {got:>10}  {entry['message']}")
        if self.exit_code == PASSED:
            rows.append(f"bring-up PASSED: {self.verdict}")
        else:
            where = f" at joint {self.failed_joint}" if self.failed_joint else ""
            rows.append(f"bring-up FAILED{where}: {self.verdict}")
        if self.safe_mode_steps or self.bad_messages:
            rows.append(f"({self.safe_mode_steps} safe-mode steps, {self.bad_messages} rejected messages)")
        return "\n".join(rows)


def run(args: list[str] | None = None, timeout_s: float = 600.0) -> int:
    """Run the check to its verdict; print the per-joint report. 0: passed, 1: failed, 2: bad configuration."""
    io.require_local_discovery()
    context = rclpy.context.Context()
    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        try:
            node = BringupNode(context)
        except (ConfigError, ValueError, FileNotFoundError) as err:  # ValueError: pydantic validation
            print(f"bring-up: error: {err}", file=sys.stderr)
            return 2
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + timeout_s
        try:
            while node.exit_code is None and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        except KeyboardInterrupt:
            node._finish(FAILED, "interrupted")
        if node.exit_code is None:
            node._finish(FAILED, f"no verdict within {timeout_s:g} s")
        print(node.report_text(), flush=True)
        return node.exit_code
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()


def main(args: list[str] | None = None) -> int:
    return run(args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
