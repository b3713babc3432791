# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Deploy node: a frozen policy drives the robot through the safety layer. It never learns.

    joint_states, imu/data (+ odom, foot_contacts, scan if the observation reads them) → RobotState (ros_io)
    DeployStep: observation → FrozenPolicy.act → pipeline.action_to_command → SafetyLayer → joint_commands
    sac_robot/estop and /sac_robot/estop (Bool, any QoS) → safe mode; sac_robot/resume (Trigger) releases it
    safe mode (the hold) until the e-stop state is known (robot.safety.estop_grace_s)
    /diagnostics about 1 Hz: safety state, counters, latency (sensor stamp → command publish) p50/p99

Parameters: policy (a policy.safetensors file), config (the robot's training config, name or path; its
`robot` section builds the pipeline), control_rate_hz (default: the config's robot.control_rate_hz),
latency_window_s (10: the window the latency percentiles cover).

Before anything is subscribed, the policy's joint names, observation layout, control rate, action mapping
and dimensions are compared with the robot configuration (sac_robot.robot.deploy_check); on any
difference the node logs every one of them and exits non-zero. This module imports no torch: the policy
runs with numpy alone (sac_robot.policy_runtime).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sac_robot.core.config import ConfigError
from sac_robot.nodes import ros_io as io
from sac_robot.nodes.safety_topics import EstopStartup, QosWatch, command_publisher, subscribe_estop
from sac_robot.nodes.sensors import SensorCache
from sac_robot.nodes.spin import run_node
from sac_robot.policy_runtime import FrozenPolicy, PolicyFormatError
from sac_robot.robot.deploy_check import (
    DeployStep,
    LatencyWindow,
    PolicyMismatchError,
    observation_needs,
    require_compatible,
)
from sac_robot.robot.observation import ObservationError
from sac_robot.robot.pipeline import load_job
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState

STARTUP_ERRORS = (PolicyMismatchError, PolicyFormatError, ConfigError, OSError)


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        try:
            self._setup()
        except STARTUP_ERRORS as err:
            self.get_logger().error(f"refusing to start: {err}")
            raise

    def _setup(self) -> None:
        flexible = ParameterDescriptor(dynamic_typing=True)
        policy_path = str(self.declare_parameter("policy", "").value)
        config = str(self.declare_parameter("config", "quadruped_hw").value)
        rate_param = float(self.declare_parameter("control_rate_hz", 0.0, flexible).value)
        window_s = float(self.declare_parameter("latency_window_s", 10.0, flexible).value)
        # joint_states: act as soon as a joint state arrives (at most at the control rate), so the command
        # follows the measurement within the step's compute time; timer: act on a fixed-rate timer.
        self.trigger = str(self.declare_parameter("trigger", "joint_states").value)
        if self.trigger not in ("joint_states", "timer"):
            raise ConfigError(f"parameter trigger: expected joint_states or timer, got {self.trigger!r}")
        if not policy_path:
            raise ConfigError("parameter policy: the frozen policy file is required (policy:=FILE)")

        self.pipe = load_job(config).pipe
        rc = self.pipe.cfg
        self.rate = rate_param if rate_param > 0 else float(rc.control_rate_hz)
        self.period = 1.0 / self.rate
        try:
            self.policy = FrozenPolicy.load(policy_path)
        except OSError as err:
            raise OSError(f"parameter policy: cannot read {policy_path}: {err.strerror or err}") from None
        require_compatible(self.policy, self.pipe, self.rate, policy_path)
        self.policy_path = policy_path

        self.safety = SafetyLayer(rc.safety, self.pipe.description, self.period)
        self.loop = DeployStep(self.pipe, self.policy, self.safety)
        self.needs = set(observation_needs(self.pipe))
        # Odometry is optional unless observed: the safety layer's base-height fall check uses it when present.
        self.wants_odom = "odom" in self.needs or rc.safety.min_base_height is not None
        self.counters = {
            "steps": 0,
            "waiting_for_sensors": 0,
            "waiting_for_estop": 0,
            "bad_messages": 0,
            "step_errors": 0,
            "late_steps": 0,
        }
        window = max(1, round(window_s * self.rate))
        self.latency = LatencyWindow(window)  # newest sensor header stamp → command published
        self.compute = LatencyWindow(window)  # timer callback start → command published
        self.interval = LatencyWindow(window)  # between control steps
        self.last_step_mono: float | None = None

        qos = io.SENSOR_QOS
        self.qos_watch = QosWatch(self)
        self.pub_cmd = command_publisher(self, self.qos_watch)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        topics = self.needs | ({"odom"} if self.wants_odom else set())
        self.sensors = SensorCache(
            self, self.pipe.description, topics, qos, self.safety, self.counters, self.on_sensor, self.qos_watch
        )
        self.latest, self.stamps = self.sensors.latest, self.sensors.stamps
        subscribe_estop(self, self.on_estop, self.qos_watch)
        self.estop_startup = EstopStartup(self, self.safety)  # nothing moves before the e-stop state is known
        self.create_service(Trigger, io.RESUME, self.on_resume)
        # In joint_states mode this timer is the watchdog: it still acts (safe mode) when sensors stop.
        self.create_timer(self.period, self.on_timer)
        self.create_timer(1.0, self.on_diagnostics, clock=Clock(clock_type=ClockType.STEADY_TIME))
        meta = self.policy.meta
        self.get_logger().info(
            f"deploying {policy_path} (sha256 {self.policy.sha256[:12]}, {meta.get('updates', '?')} updates) on "
            f"{self.pipe.description.name} at {self.rate:g} Hz, {rc.action.mode} control; reading {sorted(self.needs)}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- sensors (nodes/sensors.py reads, checks and stores them) -------------------------------
    def on_sensor(self, key: str) -> None:
        if key == "joint_states" and self.trigger == "joint_states" and self._since_last_step() >= 0.8 * self.period:
            self.on_control()

    def _since_last_step(self) -> float:
        return float("inf") if self.last_step_mono is None else time.monotonic() - self.last_step_mono

    def on_timer(self) -> None:
        if self.trigger == "timer" or self._since_last_step() >= 1.5 * self.period:
            self.on_control()

    def _state(self) -> RobotState:
        return io.robot_state(self.latest, max(self.stamps.values()))  # the newest sensor message used

    # --- the control step ----------------------------------------------------------------------
    def on_control(self) -> None:
        t0 = time.perf_counter()
        if any(k not in self.latest for k in self.needs):
            self.counters["waiting_for_sensors"] += 1  # nothing to act on yet: the robot's drivers hold
            return
        if not self.safety.estop_known:
            self.counters["waiting_for_estop"] += 1  # the start-up grace: the safety layer gives safe mode
        state = self._state()
        now = self._now()
        try:
            result = self.loop.step(state, now)
        except (ObservationError, ValueError) as err:
            self.counters["step_errors"] += 1
            self.get_logger().error(f"control step failed, safe mode: {err}", throttle_duration_sec=1.0)
            result = self.safety.filter(np.full(self.pipe.act_dim, np.nan), state, now)  # → safe-mode command
        self.pub_cmd.publish(Float64MultiArray(data=result.command.tolist()))
        published = self._now()
        self.latency.add(published - state.stamp)
        self.compute.add(time.perf_counter() - t0)
        self.counters["steps"] += 1
        mono = time.monotonic()
        if self.last_step_mono is not None:
            gap = mono - self.last_step_mono
            self.interval.add(gap)
            if gap > 1.5 * self.period:
                self.counters["late_steps"] += 1
        self.last_step_mono = mono

    # --- e-stop, resume, diagnostics -----------------------------------------------------------
    def on_estop(self, pressed: bool) -> None:
        was = self.safety.estop_pressed
        if self.safety.estop(pressed, self._now()) and pressed != was:
            self.get_logger().warning(
                "e-stop pressed: holding (safe mode)" if pressed else "e-stop released: call sac_robot/resume"
            )

    def on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        ok, why = self.safety.request_resume(self._now())
        if ok:
            self.get_logger().info(f"resume: {why}")
        response.success, response.message = ok, why
        return response

    def on_diagnostics(self) -> None:
        now = self._now()
        values: dict[str, object] = {
            "policy": self.policy_path,
            "policy_sha256": self.policy.sha256[:16],
            "policy_updates": self.policy.meta.get("updates", "?"),
            "control_rate_hz": f"{self.rate:g}",
            **self.counters,
        }
        for name, window in (("latency", self.latency), ("compute", self.compute), ("step_interval", self.interval)):
            s = window.stats_ms()
            values.update(
                {
                    f"{name}_ms_p50": f"{s['p50']:.2f}",
                    f"{name}_ms_p99": f"{s['p99']:.2f}",
                    f"{name}_ms_max": f"{s['max']:.2f}",
                }
            )
        values["latency_samples"] = self.latency.stats_ms()["n"]
        values.update(self.safety.diagnostics(now))
        values.update(self.qos_watch.diagnostics())
        level = max(int(self.safety.status_level()), self.qos_watch.level)
        message = self.safety.status_message()
        if any(k not in self.latest for k in self.needs):
            missing = sorted(k for k in self.needs if k not in self.latest)
            message = f"waiting for {', '.join(missing)}"
        if self.qos_watch.seen:
            message += "; incompatible QoS: " + values["qos_incompatible"]
        ns = self.get_namespace().rstrip("/")
        name = f"sac_robot/policy_node{ns}"
        self.pub_diag.publish(io.diagnostics_msg(name, self.pipe.description.name, level, message, values, now))

    def close(self) -> None:
        """Leave the robot in safe mode: the hold / damping command once more (effort drivers keep the last)."""
        if self.counters["steps"] == 0:
            return
        now = self._now()
        self.safety.estop(True, now)
        state = self._state() if all(k in self.latest for k in ("joint_states", "imu")) else None
        try:
            self.pub_cmd.publish(Float64MultiArray(data=self.safety.filter(None, state, now).command.tolist()))
        except RuntimeError as err:  # RCLError: the context may already be shut down by the signal handler
            self.get_logger().warning(f"could not send the final safe-mode command: {err}")


def main(args: list[str] | None = None) -> int:
    try:
        return run_node(PolicyNode, args)
    except STARTUP_ERRORS:
        return 2  # logged by the node: what differs, or what could not be read


if __name__ == "__main__":
    sys.exit(main())
