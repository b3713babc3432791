# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A gymnasium Env over a ROS robot: the collector's topics, pipeline, safety layer and reward.

    joint_states, imu/data, odom, scan, foot_contacts, privileged/step   → RobotState → observation
    action → Pipeline.action_to_command → SafetyLayer.filter                → joint_commands
    reset(seed=s): <stand_in>/set_parameters (seed, reseed), then reset (std_srvs/Trigger)

Any gymnasium library can drive a robot (or the Box2D stand-in) through it with the same observation,
action mapping, limits, reward and termination the collector node uses. Steps are lockstep, as the
collector's are in simulation: a step is complete when every needed topic carries a message with the
same stamp, newer than the previous step's.

The env owns its rclpy Context (never the default one), so it coexists with other rclpy users in the
process and ``close()`` shuts only its own context down. Register it as ``SacRobotRos-v0`` with
``register_ros_env()``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import rclpy
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sac_robot.core.config import ConfigError
from sac_robot.nodes import ros_io as io
from sac_robot.robot.pipeline import load_job
from sac_robot.robot.robot_step import RobotStep, Signals, complete_stamp
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState

ENV_ID = "SacRobotRos-v0"


class RosRobotEnv(gym.Env[np.ndarray, np.ndarray]):
    """Gymnasium Env whose steps go over ROS topics to a robot or stand-in (lockstep).

    Args:
        config: a config file or packaged config name; its ``robot:`` section builds the pipeline.
        namespace: the robot's namespace (e.g. ``robot1``); robot topics and services resolve in it.
        stand_in: node name of the stand-in (relative to ``namespace``) whose ``seed`` parameter a
            seeded reset sets; ``""`` when there is none (seeded resets then only seed the env's RNG).
        timeout_s: longest wait for a step's state, a service or discovery before raising TimeoutError.
        domain_id: ROS domain of the env's own context (None: ROS_DOMAIN_ID).
        node_name: name of the env's node (None: ``ros_robot_env_`` and a random suffix, unique in the graph).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        config: str | Path = "bipedal_walker",
        namespace: str = "",
        stand_in: str = "stand_in",
        timeout_s: float = 10.0,
        domain_id: int | None = None,
        node_name: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"{ENV_ID} does not render (render_mode {render_mode!r})")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s}")
        self.render_mode = None
        job = load_job(config)
        self.cfg, self.pipe = job.config, job.pipe
        rc = self.pipe.cfg
        if not rc.lockstep:
            raise ConfigError(f"{config}: robot.lockstep is false; {ENV_ID} steps in lockstep only")
        self.timeout_s = float(timeout_s)
        self.stand_in = stand_in.strip("/")
        self.safety = SafetyLayer(rc.safety, self.pipe.description, 1.0 / rc.control_rate_hz)
        self.robot = RobotStep(self.pipe, self.safety)  # the collector's step: same limits, reward, termination
        self.needs = self.pipe.needs

        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.pipe.act_dim,), np.float32)
        low = getattr(self.pipe.observation, "low", None)
        high = getattr(self.pipe.observation, "high", None)
        if low is None or high is None:
            low, high = np.full(self.pipe.obs_dim, -np.inf), np.full(self.pipe.obs_dim, np.inf)
        self.observation_space = gym.spaces.Box(
            np.asarray(low, np.float32), np.asarray(high, np.float32), (self.pipe.obs_dim,), np.float32
        )

        self._latest: dict[str, Any] = {}
        self._stamps: dict[str, float] = {}
        self._last_stamp = -math.inf
        self._state: RobotState | None = None
        self._length = 0
        self._needs_reset = True
        self._discovered = False
        self.bad_messages = 0
        self.last_error: str | None = None

        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self._closed = False
        try:
            self._build_node(node_name or f"ros_robot_env_{uuid.uuid4().hex[:8]}", namespace)
        except BaseException:
            self._context.try_shutdown()
            self._closed = True
            raise

    # --- ROS plumbing ----------------------------------------------------------------------------
    def _build_node(self, node_name: str, namespace: str) -> None:
        ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
        self.node = rclpy.create_node(node_name, namespace=ns, context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        n = self.node
        qos = io.lockstep_qos(True)
        self._joints = io.JointOrder(self.pipe.description.joint_names, io.JOINT_STATES)
        self._feet = io.JointOrder(self.pipe.description.feet, io.FOOT_CONTACTS)
        self.pub_cmd = n.create_publisher(Float64MultiArray, io.JOINT_COMMANDS, io.COMMAND_QOS)
        readers: dict[str, tuple[type, str, Callable[[Any], tuple[Any, Any]]]] = {
            "joint_states": (io.JointState, io.JOINT_STATES, lambda m: (self._joints.read(m), m.header.stamp)),
            "imu": (io.Imu, io.IMU, lambda m: (io.read_imu(m), m.header.stamp)),
            "odom": (io.Odometry, io.ODOM, lambda m: (io.read_odom(m), m.header.stamp)),
            "scan": (io.LaserScan, io.SCAN, lambda m: (io.read_scan(m), m.header.stamp)),
            "foot_contacts": (
                io.JointState,
                io.FOOT_CONTACTS,
                lambda m: (self._feet.read(m, ("position",))[0], m.header.stamp),
            ),
            "privileged": (io.Vector3Stamped, io.PRIVILEGED, lambda m: (_read_signals(m), m.header.stamp)),
        }
        self._subs = []
        for key in self.needs:
            msg_type, topic, read = readers[key]
            self._subs.append((topic, n.create_subscription(msg_type, topic, self._receiver(key, read), qos)))
        self._reset_client = n.create_client(Trigger, io.RESET)
        self._set_params = self._get_params = None
        if self.stand_in:
            self._set_params = n.create_client(SetParameters, f"{self.stand_in}/set_parameters")
            self._get_params = n.create_client(GetParameters, f"{self.stand_in}/get_parameters")

    def _receiver(self, key: str, read: Callable[[Any], tuple[Any, Any]]) -> Callable[[Any], None]:
        def on_message(msg: Any) -> None:
            try:
                value, stamp = read(msg)
            except io.MessageError as err:
                self.bad_messages += 1
                self.last_error = str(err)
                return
            t = io.from_time(stamp)
            self._latest[key], self._stamps[key] = value, t
            if key in ("joint_states", "imu"):
                self.safety.note_sensor(key, t)

        return on_message

    def _spin_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{ENV_ID}: no {what} within {timeout_s:.1f} s (namespace {self.node.get_namespace()!r})"
                )
            self._executor.spin_once(timeout_sec=min(0.05, remaining))

    def _call(self, client: Any, request: Any, what: str, resend_s: float | None = None) -> Any:
        """Call a service and wait for its answer; with ``resend_s`` (idempotent requests only) a request
        unanswered that long is sent again, as one sent while the endpoints were still matching is lost."""
        deadline = time.monotonic() + self.timeout_s
        if not client.service_is_ready():
            self._spin_until(client.service_is_ready, self.timeout_s, f"service {client.service_name}")
        while True:
            future = client.call_async(request)
            remaining = max(0.0, deadline - time.monotonic())
            try:
                self._spin_until(future.done, remaining if resend_s is None else min(resend_s, remaining), "answer")
                return future.result()
            except TimeoutError:
                client.remove_pending_request(future)
                if resend_s is None or time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{ENV_ID}: no answer from {client.service_name} ({what}) within {self.timeout_s:.1f} s"
                    ) from None

    def _discover(self) -> None:
        """Wait until every needed topic has a matched publisher and the robot takes commands."""
        if self._discovered:
            return

        def matched() -> bool:
            return self.pub_cmd.get_subscription_count() > 0 and all(s.get_publisher_count() > 0 for _, s in self._subs)

        try:
            self._spin_until(matched, self.timeout_s, "robot (matched publishers and command subscriber)")
        except TimeoutError as err:
            missing = [t for t, s in self._subs if s.get_publisher_count() == 0]
            if self.pub_cmd.get_subscription_count() == 0:
                missing.append(f"{io.JOINT_COMMANDS} (subscriber)")
            raise TimeoutError(f"{err}; missing: {missing}") from None
        if self._get_params is not None:  # one answered call: the stand-in is up and its services reach us
            self._call(self._get_params, GetParameters.Request(names=["seed"]), "handshake", resend_s=1.0)
        self._discovered = True

    def _seed_stand_in(self, seed: int) -> None:
        """Set the stand-in's seed and bump its reseed counter, so its next reset reseeds even with an unchanged seed."""
        if self._get_params is None or self._set_params is None:
            return
        if seed < 0:
            raise ValueError(f"the stand-in takes seeds >= 0, got {seed}")
        got = self._call(self._get_params, GetParameters.Request(names=["reseed"]), "get reseed", resend_s=1.0)
        values = list(got.values)
        if not values or values[0].type != Parameter.Type.INTEGER.value:
            raise RuntimeError(f"{ENV_ID}: stand-in {self.stand_in!r} has no integer 'reseed' parameter")
        request = SetParameters.Request()
        request.parameters = [
            Parameter("seed", Parameter.Type.INTEGER, int(seed)).to_parameter_msg(),
            Parameter("reseed", Parameter.Type.INTEGER, int(values[0].integer_value) + 1).to_parameter_msg(),
        ]
        response = self._call(self._set_params, request, "set seed", resend_s=1.0)
        failed = [r.reason for r in response.results if not r.successful]
        if failed:
            raise RuntimeError(f"{ENV_ID}: stand-in {self.stand_in!r} refused the seed: {failed}")

    def _complete_stamp(self) -> float | None:
        return complete_stamp(self.needs, self._stamps, self._last_stamp)

    def _wait_state(self, timeout_s: float, what: str) -> RobotState:
        self._spin_until(lambda: self._complete_stamp() is not None, timeout_s, what)
        self._last_stamp = self._complete_stamp()
        return io.robot_state(self._latest, self._last_stamp)

    # --- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the robot (its reset service), reseeding the stand-in first when ``seed`` is given.

        Without a seed the stand-in's random generator continues, as an in-process env's does.
        """
        if options:
            raise ValueError(f"{ENV_ID}: unknown reset options {sorted(options)}")
        super().reset(seed=seed)
        self._check_open()
        self._discover()
        # A reset whose first state is lost (endpoints still matching) is repeated, reseeded alike.
        first_wait = min(self.timeout_s, 2.0)
        deadline = time.monotonic() + self.timeout_s
        attempt = 0
        while True:
            if seed is not None:
                self._seed_stand_in(seed)
            for _ in range(10):  # take in whatever was still under way before forgetting it
                self._executor.spin_once(timeout_sec=0.0)
            self._latest.clear()
            self._stamps.clear()
            self._last_stamp = -math.inf
            response = self._call(self._reset_client, Trigger.Request(), "reset")
            if not response.success:
                raise RuntimeError(f"{ENV_ID}: the robot's reset failed: {response.message}")
            try:
                state = self._wait_state(min(first_wait, max(0.1, deadline - time.monotonic())), "state after reset")
                break
            except TimeoutError:
                attempt += 1
                if time.monotonic() >= deadline:
                    raise
                self.node.get_logger().warning(f"no state after reset (attempt {attempt}); resetting again")
        self.robot.start_episode(state.joint_position)  # position mode: rate limits ramp from the measured pose
        self._state = state
        self._length = 0
        self._needs_reset = False
        return self.robot.observe(state), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._check_open()
        if self._needs_reset or self._state is None:
            raise RuntimeError(f"{ENV_ID}: call reset() before step() (the episode is over or never started)")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        state = self._state
        safe, executed = self.robot.act(a, state, state.stamp)
        self.pub_cmd.publish(Float64MultiArray(data=safe.command.tolist()))
        try:
            new_state = self._wait_state(self.timeout_s, "state after the command")
        except TimeoutError:
            self._needs_reset = True
            raise
        out = self.robot.outcome(new_state, self._latest.get("privileged"), self._length)
        reward, terminated, truncated = out.reward, out.terminated, out.truncated
        obs = self.robot.observe(new_state)
        self._state = new_state
        self._length += 1
        self._needs_reset = terminated or truncated
        info = {
            "executed_action": executed.astype(np.float32),
            "intervened": bool(safe.intervened),
            "safety_reasons": list(safe.reasons),
        }
        return obs, reward, terminated, truncated, info

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{ENV_ID}: the environment is closed")

    def close(self) -> None:
        """Destroy the node and shut the env's own context down (safe to call repeatedly)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()
        finally:
            self._context.try_shutdown()


def _read_signals(msg: io.Vector3Stamped) -> Signals:
    v = msg.vector
    if not np.all(np.isfinite([v.x, v.y, v.z])):
        raise io.MessageError(f"{io.PRIVILEGED}: contains NaN or inf")
    return Signals(v.x, v.y > 0.5, v.z > 0.5)


def register_ros_env() -> str:
    """Register ``SacRobotRos-v0`` with gymnasium (safe to call repeatedly); returns the id.

    ``gymnasium.make("SacRobotRos-v0", config=..., namespace=..., domain_id=...)`` then creates a RosRobotEnv.
    """
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=f"{__name__}:RosRobotEnv")
    return ENV_ID
