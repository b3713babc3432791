# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Collector node: robot topics in, safe joint commands out, transitions to the learner.

    joint_states, imu/data, odom, scan, foot_contacts, privileged/step   → RobotState (ros_io)
    CollectorLoop.step (observation, policy, SafetyLayer)               → joint_commands
    transitions (batched, numbered, kept until acked)                    → /sac_robot/transitions
    /sac_robot/policy → decoded off the control thread, swapped between steps
    sac_robot/estop and /sac_robot/estop (Bool, any QoS) → SafetyLayer latch; sac_robot/resume (Trigger) releases it
    no control step runs before the e-stop's start-up grace (robot.safety.estop_grace_s) has passed

A lifecycle node (rclpy.lifecycle): configure builds the pipeline, safety layer and loop and wires the
topics; activate arms it. Before activation and after deactivation nothing is published on
joint_commands (a lifecycle publisher, and no control step runs). With ``autostart`` (default: the
config's robot.autostart; true in simulation, false on hardware) the node configures and activates
itself at start; otherwise a person arms it: ``sac-robot arm [--namespace NS]``. With the routine reset
(hardware) every activation begins with the reset routine, so the first episode starts from a verified
stand; in simulation a re-activation restarts the episode through the stand-in's reset.

lockstep: a step runs when every needed topic has a message newer than the last step's;
real time: a timer at control_rate_hz runs the step with the newest messages (the watchdog in the
safety layer catches stale ones). The timer measures its own period (time.perf_counter) over a sliding
window: p50/p99/max and missed deadlines (a period over 1.5× nominal: counted, logged, reported).

Parameters: config, collector_id, seed, key_file, lockstep (default: the config's robot.lockstep),
autostart (default: the config's robot.autostart), timing_window_s (10: the window of the period statistics).
"""

from __future__ import annotations

import json
import math
import queue
import socket
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Float64MultiArray, String, UInt8MultiArray
from std_srvs.srv import Trigger

from sac_robot.core.config import load_config
from sac_robot.core.wire import VersionGate, WireError, accept_policy, decode_ack, encode_transitions, load_key
from sac_robot.nodes import cdr_writers
from sac_robot.nodes import ros_io as io
from sac_robot.nodes.safety_topics import QosWatch, subscribe_estop
from sac_robot.nodes.sensors import SensorCache
from sac_robot.nodes.spin import run_node
from sac_robot.policy_runtime import FrozenPolicy, PolicyFormatError
from sac_robot.robot.collector_loop import CollectorLoop
from sac_robot.robot.deploy_check import LatencyWindow
from sac_robot.robot.pipeline import build_pipeline, parse_robot_config
from sac_robot.robot.reset import ResetPhase, ResetRoutine
from sac_robot.robot.safety import LEARNER_GONE, SafetyLayer
from sac_robot.robot.state import RobotState

MISSED_DEADLINE_FACTOR = 1.5  # a control period longer than this × nominal is a missed deadline


class CollectorNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("collector")
        config = self.declare_parameter("config", "bipedal_walker").value
        rc = parse_robot_config(load_config(config).robot, str(config))  # defaults of the parameters below
        default_id = f"{socket.gethostname()}{self.get_namespace().replace('/', '_')}"
        self.declare_parameter("collector_id", default_id)
        self.declare_parameter("seed", 0)
        self.declare_parameter("key_file", "")
        self.declare_parameter("lockstep", rc.lockstep)
        self.declare_parameter("timing_window_s", 10.0, ParameterDescriptor(dynamic_typing=True))
        autostart = self.declare_parameter("autostart", rc.autostart).value
        self.armed = False  # active: control steps run and commands are published
        self.activations = 0
        self.loop: CollectorLoop | None = None
        self.configure_error: Exception | None = None
        self.policy_gate = VersionGate()  # kept across re-configures: an old policy is never taken again
        self.policy_queue: queue.Queue[bytes] = queue.Queue(maxsize=2)
        self.new_policy: tuple[FrozenPolicy, int] | None = None
        self.policy_lock = threading.Lock()
        threading.Thread(target=self._decode_policies, name="policy-decoder", daemon=True).start()
        self._lifecycle_entities = self._entities()  # kept by cleanup: lifecycle and parameter services
        if autostart:
            self._autostart()
        else:
            self.get_logger().info(
                "collector unconfigured, not armed: arm it with `sac-robot arm` (configure, activate)"
            )

    # --- lifecycle -----------------------------------------------------------------------------
    def _autostart(self) -> None:
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise self.configure_error or RuntimeError("collector: configure failed")
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError("collector: activate failed")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as err:  # noqa: BLE001 (rclpy swallows it unlogged): say why, stay unconfigured
            self.configure_error = err
            self.get_logger().error(f"configure failed: {err}")
            self._destroy_configured()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the joint_commands publisher
        self.armed = True
        self.last_step_time = time.monotonic()
        self.loop.abort_episode()
        self.safety.reset_filter(None)  # the next measured pose seeds the hold target: no jump
        if self.pipe.cfg.reset.mode == "routine" or self.activations > 0:
            self.request_reset("armed")  # hardware: stand up and verify before the first episode
        self.activations += 1
        self.get_logger().info("armed: control steps run and joint commands are published")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.armed = False
        self.timing_pause()
        self.loop.abort_episode()
        self.close()  # what is queued goes to the learner
        self.get_logger().info("disarmed: nothing is published on joint_commands")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_configured()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.armed = False
        return super().on_shutdown(state)

    def _entities(self) -> set:
        return {*self.publishers, *self.subscriptions, *self.services, *self.clients, *self.timers}

    def _destroy_configured(self) -> None:
        """Undo configure: every publisher, subscription, service, client and timer it made."""
        self.armed = False
        keep = self._lifecycle_entities
        for pub in set(self.publishers) - keep:
            (self.destroy_lifecycle_publisher if isinstance(pub, LifecyclePublisher) else self.destroy_publisher)(pub)
        for sub in set(self.subscriptions) - keep:
            self.destroy_subscription(sub)
        for srv in set(self.services) - keep:
            self.destroy_service(srv)
        for client in set(self.clients) - keep:
            self.destroy_client(client)
        for timer in set(self.timers) - keep:
            self.destroy_timer(timer)
        if getattr(self, "time_jump", None) is not None:
            self.time_jump.unregister()
            self.time_jump = None
        self.loop = None

    # --- configure: the wiring -----------------------------------------------------------------
    def _configure(self) -> None:
        config = self.get_parameter("config").value
        self.collector_id = self.get_parameter("collector_id").value
        seed = self.get_parameter("seed").value
        self.cfg = load_config(config)
        self.pipe = build_pipeline(self.cfg.robot, str(config))
        self.key = load_key(self.get_parameter("key_file").value or self.pipe.cfg.security.key_file)
        rc = self.pipe.cfg
        self.lockstep = self.get_parameter("lockstep").value
        self.period = 1.0 / rc.control_rate_hz
        self.safety = SafetyLayer(rc.safety, self.pipe.description, self.period)
        epoch = int(time.time() * 1000)  # a new epoch per configure: sequence numbers restart at 0
        self.loop = CollectorLoop(self.pipe, self.safety, self.collector_id, epoch, seed)
        self.utd, self.learning_starts = self.cfg.sac.utd, self.cfg.sac.learning_starts
        self.needs = set(self.pipe.needs) | ({"privileged"} if "privileged" in (rc.reward, rc.termination) else set())
        self.last_step_stamp = -1.0
        self.resetting = False
        self.waiting_learner = False
        self.learner_updates = 0
        self.learner_stored = 0
        self.last_ack_time = time.monotonic()
        self.last_resend_time = -math.inf
        self.last_policy_time: float | None = None
        self.counters = {
            "bad_messages": 0,
            "steps": 0,
            "resets": 0,
            "resends": 0,
            "lag_waits": 0,
            "stalls": 0,
            "out_of_order": 0,
            "time_jumps": 0,
        }
        self.last_step_time = time.monotonic()
        window = max(10, round(float(self.get_parameter("timing_window_s").value) / self.period))
        self.periods = LatencyWindow(window)  # control periods, s
        self.jitter = LatencyWindow(self.periods.samples.maxlen)  # |period - nominal|, s
        self.last_tick: float | None = None
        self.missed_deadlines = 0
        self.missed_reported = 0

        sensor_qos = io.lockstep_qos(self.lockstep)
        self.qos_watch = QosWatch(self)
        self.pub_cmd = self.create_lifecycle_publisher(
            Float64MultiArray,
            io.JOINT_COMMANDS,
            io.COMMAND_QOS,
            event_callbacks=self.qos_watch.publisher(io.JOINT_COMMANDS, io.COMMAND_QOS),
        )
        self.write_cmd = cdr_writers.Float64MultiArrayWriter(self.pipe.act_dim)  # packed bytes: every step
        self.pub_tr = self.create_publisher(UInt8MultiArray, io.TRANSITIONS, io.TRANSITIONS_QOS)
        self.pub_ep = self.create_publisher(String, io.EPISODES, io.EPISODES_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.sensors = SensorCache(
            self,
            self.pipe.description,
            self.needs,
            sensor_qos,
            self.safety,
            self.counters,
            self.on_sensor,
            self.qos_watch,
        )
        self.latest, self.stamps = self.sensors.latest, self.sensors.stamps
        subscribe_estop(self, self.on_estop, self.qos_watch)
        self.safety.listen_for_estop()  # no control step before a latched e-stop could have arrived
        self.create_subscription(UInt8MultiArray, io.POLICY, self.on_policy, io.POLICY_QOS)
        self.create_subscription(String, io.ACK, self.on_ack, io.ACK_QOS)
        self.create_service(Trigger, io.RESUME, self.on_resume)
        self.reset_client = self.create_client(Trigger, io.RESET)
        self.reset = ResetRoutine(rc.reset, self.pipe.description, rc.safety, self.period)
        self.reset_status = "idle"
        self.reset_call_wanted = False  # the reset machine asked for a call the node has not made yet
        self.reset_future = None  # the one call whose answer counts; a newer attempt supersedes it
        self.deferred_error: Exception | None = None
        # Housekeeping runs on the steady clock: under sim time a stalled simulation would stop ROS-time timers.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(2.0, self.resend_unacked, clock=steady)
        self.create_timer(1.0, self.on_diagnostics, clock=steady)
        # Sim time going backwards means the simulator restarted: the old stamps order nothing any more.
        self.time_jump = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=False),
            post_callback=self.on_time_jump,
        )
        if self.lockstep:
            self.create_timer(0.05, self.kick, clock=steady)  # retries a step held back by UTD pacing or lost data
        else:
            self.create_timer(self.period, self.on_control_timer)
        self.get_logger().info(
            f"collector {self.collector_id} configured ({'lockstep' if self.lockstep else f'{rc.control_rate_hz} Hz'})"
        )

    # --- sensors (nodes/sensors.py reads, checks and stores them) -------------------------------
    def _reject(self, err: Exception) -> None:
        self.counters["bad_messages"] += 1
        self.get_logger().warning(f"message rejected: {err}", throttle_duration_sec=1.0)

    def on_sensor(self, key: str) -> None:
        if self.lockstep:
            self.try_step()

    def on_time_jump(self, jump: TimeJump) -> None:
        self.counters["time_jumps"] += 1
        self.get_logger().warning(
            f"time jumped back by {-jump.delta.nanoseconds * 1e-9:.3f} s (simulator restarted?): stamps start over"
        )
        self.sensors.clear()
        self.last_step_stamp = -math.inf

    def _state(self) -> RobotState:
        return self.sensors.state()

    # --- the control step ----------------------------------------------------------------------
    def try_step(self) -> None:
        """Lockstep: run when every needed topic carries the same stamp, newer than the last step's."""
        if (
            not self.armed
            or self.resetting
            or not self.safety.estop_known
            or any(k not in self.stamps for k in self.needs)
        ):
            return
        stamps = {self.stamps[k] for k in self.needs}
        if len(stamps) != 1:
            return
        stamp = stamps.pop()
        if stamp <= self.last_step_stamp or self._learner_behind():
            return
        self.last_step_stamp = stamp
        self.control_step(stamp)

    def kick(self) -> None:
        """Lockstep housekeeping: resume after UTD pacing; restart an episode whose messages were lost
        (e.g. the stand-in's first state was published before this node subscribed)."""
        self._raise_deferred()
        if not self.armed:
            return
        if self.resetting:
            self.tick_reset()  # retries, and waiting for a person, progress on the steady clock
            return
        if self.waiting_learner:
            if not self._learner_behind():
                self.waiting_learner = False
                self.try_step()
            return
        self.try_step()  # e.g. the first step, held back by the e-stop's start-up grace
        if not self.resetting and time.monotonic() - self.last_step_time > 2.0:
            self.counters["stalls"] += 1
            self.loop.abort_episode()
            self.request_reset("lost messages")

    def on_control_timer(self) -> None:
        self._raise_deferred()
        if not self.armed:
            return
        self.timing_tick(time.perf_counter())
        if self.resetting:
            self.tick_reset()
            return
        if any(k not in self.latest for k in self.needs) or not self.safety.estop_known:
            return  # a step needs every topic the observation and reward read, and the e-stop's state
        self.control_step(self.get_clock().now().nanoseconds * 1e-9)

    def control_step(self, now: float) -> None:
        self.last_step_time = time.monotonic()
        self._swap_policy()
        signals = self.latest.get("privileged")
        if self._learner_gone() and self.pipe.cfg.on_learner_gone == "safe_mode":
            result = self.loop.hold(self._state(), now, LEARNER_GONE)
        else:
            result = self.loop.step(self._state(), signals, now)
        self.counters["steps"] += 1
        if result.command is not None:
            self.pub_cmd.publish(self.write_cmd(result.command))
        for info in (result.episode, result.eval_round):
            if info is not None:
                summary = {**info, "collector_id": self.collector_id, "reset_stats": self._reset_stats()}
                self.pub_ep.publish(String(data=json.dumps(summary)))
        batch = self.loop.take_batch(force=result.reset or result.blind)  # blind: nothing waits for a full batch
        if batch is not None:
            self.pub_tr.publish(cdr_writers.uint8_multi_array(encode_transitions(batch, self.key)))
        if result.reset:
            self.request_reset(result.episode.get("end", "episode end") if result.episode else "episode end")

    def _reset_stats(self) -> dict[str, object]:
        stats = self.reset.statistics(time.monotonic())
        return {
            "resets_done": stats.resets_done,
            "time_resetting_s": stats.time_resetting_s,
            "resets_per_hour": stats.resets_per_hour,
            "waits_for_person": stats.waits_for_person,
            "reasons": stats.reasons,
        }

    def _learner_gone(self) -> bool:
        """Real time: transitions wait for an acknowledgement that has not come for policy_timeout_s."""
        silent = time.monotonic() - self.last_ack_time
        return not self.lockstep and bool(self.loop.unacked) and silent > self.pipe.cfg.policy_timeout_s

    def _learner_status(self) -> str:
        """What the operator needs to know about the learner: silent learners are said out loud."""
        silent = time.monotonic() - self.last_ack_time
        if self.loop.unacked and silent > self.pipe.cfg.policy_timeout_s:
            if self.waiting_learner:
                action = "holding (waiting for it)"
            elif self.pipe.cfg.on_learner_gone == "safe_mode" and not self.lockstep:
                action = "safe mode until it is back (on_learner_gone: safe_mode)"
            else:
                action = "running the last policy" if self.loop.policy is not None else "acting randomly as before"
            return f"no acknowledgement for {silent:.0f} s: {action}; {self.loop.unacked_count} transitions kept"
        return "ok" if self.last_policy_time else "no policy yet (random actions)"

    def _learner_behind(self) -> bool:
        """Simulation only: hold the next step while the learner lags the UTD ratio, or (before the first
        policy) while it has not stored what was sent: a learner that starts late must not miss the run."""
        if not (self.lockstep and self.pipe.cfg.wait_for_learner):
            return False
        in_flight = self.loop.unacked_count + len(self.loop.outbox)
        max_lag = self.pipe.cfg.max_learner_lag_steps
        if self.loop.policy is None:
            behind = in_flight > max(self.learning_starts, self.pipe.cfg.send_batch) + max_lag
        else:
            lag = self.utd * (self.learner_stored + in_flight - self.learning_starts) - self.learner_updates
            behind = lag > self.utd * max_lag
        if behind and not self.waiting_learner:
            self.waiting_learner = True
            self.counters["lag_waits"] += 1
        return behind

    # --- control timing ------------------------------------------------------------------------
    def timing_tick(self, t: float) -> None:
        """One control-timer callback at perf_counter time t: its period, jitter and a missed deadline."""
        if self.last_tick is not None:
            period = t - self.last_tick
            self.periods.add(period)
            self.jitter.add(abs(period - self.period))
            if period > MISSED_DEADLINE_FACTOR * self.period:
                self.missed_deadlines += 1
                self.get_logger().warning(
                    f"missed control deadline: period {period * 1e3:.1f} ms > {MISSED_DEADLINE_FACTOR}× "
                    f"{self.period * 1e3:.1f} ms ({self.missed_deadlines} so far)",
                    throttle_duration_sec=5.0,
                )
        self.last_tick = t

    def timing_pause(self) -> None:
        """Disarmed time is no control period."""
        self.last_tick = None

    def timing_diagnostics(self) -> dict[str, str]:
        p, j = self.periods.stats_ms(), self.jitter.stats_ms()
        window = sum(self.periods.samples)
        return {
            "control_rate_hz": f"{len(self.periods.samples) / window:.2f}" if window > 0 else "n/a",
            "control_period_nominal_ms": f"{self.period * 1e3:.2f}",
            "control_period_p50_ms": f"{p['p50']:.2f}",
            "control_period_p99_ms": f"{p['p99']:.2f}",
            "control_period_max_ms": f"{p['max']:.2f}",
            "control_jitter_p50_ms": f"{j['p50']:.2f}",
            "control_jitter_p99_ms": f"{j['p99']:.2f}",
            "control_jitter_max_ms": f"{j['max']:.2f}",
            "control_periods": str(self.periods.total),
            "control_window_periods": str(p["n"]),
            "missed_deadlines": str(self.missed_deadlines),
        }

    # --- resets --------------------------------------------------------------------------------
    def request_reset(self, reason: str = "episode end") -> None:
        """Start the configured reset: the stand-in's service, or the stand-up routine on hardware."""
        self.resetting = True
        self.last_step_time = time.monotonic()
        self.counters["resets"] += 1
        self.reset.start(time.monotonic(), self._state_or_none(), reason)
        self.tick_reset()

    def _state_or_none(self) -> RobotState | None:
        return self._state() if "joint_states" in self.latest and "imu" in self.latest else None

    def tick_reset(self) -> None:
        """One tick of the reset state machine; no transitions are produced while it runs."""
        state = self._state_or_none()
        step = self.reset.tick(time.monotonic(), state)
        self.reset_status = step.status
        if step.call_service:
            self.reset_call_wanted, self.reset_future = True, None  # an unanswered call (dead stand-in) is dropped
        if self.reset_call_wanted and step.phase == ResetPhase.CALL_SERVICE:
            if self.reset_client.service_is_ready():
                self.reset_call_wanted = False
                self.reset_future = self.reset_client.call_async(Trigger.Request())
                self.reset_future.add_done_callback(self._service_done)
            else:  # e.g. a stand-in restarting: wait for it; the machine's service_timeout_s bounds the wait
                self.reset_status = f"waiting for the reset service {self.reset_client.srv_name} ({step.status})"
        if self.pipe.cfg.reset.mode == "routine" and state is not None:
            hold = state.joint_position if self.pipe.cfg.action.mode == "position" else np.zeros(self.pipe.act_dim)
            desired = step.command if step.command is not None else hold
            now = self.get_clock().now().nanoseconds * 1e-9
            self.pub_cmd.publish(self.write_cmd(self.safety.filter(desired, state, now).command))
        if step.phase == ResetPhase.DONE:
            self.resetting = False
            self.loop.abort_episode()
            self.safety.reset_filter(state.joint_position if state is not None else None)
            if self.lockstep:
                self.try_step()

    def _service_done(self, future) -> None:
        """A future's done callback runs outside the node's guarded callbacks (nodes/spin.py), and an exception
        escaping it can crash rclpy's EventsExecutor: it is kept and raised by the next housekeeping tick."""
        try:
            if future is not self.reset_future:
                return  # the answer to a call that a later attempt superseded
            self.reset_future = None
            response = future.result()
            ok = response is not None and response.success
            self.reset.service_done(ok, getattr(response, "message", "no response"))
            if not ok:
                self.get_logger().warning(f"reset service failed: {getattr(response, 'message', 'no response')}")
            if self.armed:
                self.tick_reset()
        except Exception as err:  # noqa: BLE001 - re-raised in kick()/on_control_timer()
            self.deferred_error = err

    def _raise_deferred(self) -> None:
        if self.deferred_error is not None:
            err, self.deferred_error = self.deferred_error, None
            raise err

    # --- learner traffic -----------------------------------------------------------------------
    def on_policy(self, msg: UInt8MultiArray) -> None:
        try:
            self.policy_queue.put_nowait(bytes(msg.data))
        except queue.Full:
            pass  # a newer one is being decoded already

    def _decode_policies(self) -> None:
        """Decoding and hash checking stay off the control thread."""
        while True:
            data = self.policy_queue.get()
            try:
                policy = accept_policy(data, self.key, self.policy_gate, io.POLICY)
            except (PolicyFormatError, WireError) as err:
                self.counters["bad_messages"] += 1
                self.get_logger().warning(f"policy rejected: {err}")
                continue
            with self.policy_lock:
                self.new_policy = (policy, int(policy.meta["version"]))

    def _swap_policy(self) -> None:
        with self.policy_lock:
            new, self.new_policy = self.new_policy, None
        if new is not None:
            try:
                self.loop.set_policy(*new)
                self.last_policy_time = time.monotonic()
            except ValueError as err:
                self.counters["bad_messages"] += 1
                self.get_logger().warning(f"policy rejected: {err}")

    def on_ack(self, msg: String) -> None:
        try:
            ack = decode_ack(msg.data)
        except WireError as err:
            self._reject(err)
            return
        self.learner_updates, self.learner_stored = ack["updates"], ack["stored"]
        if ack["collector_id"] == self.collector_id and ack["epoch"] == self.loop.epoch:
            if ack["acked_seq"] > self.loop.acked_seq:
                self.last_ack_time = time.monotonic()
            self.loop.on_ack(ack["acked_seq"])
        if self.waiting_learner:
            self.kick()

    def resend_unacked(self) -> None:
        """Anything unacknowledged for a while is sent again; the learner drops what it already holds."""
        now = time.monotonic()
        if self.loop.unacked and now - max(self.last_ack_time, self.last_resend_time) > 3.0:
            for batch in list(self.loop.unacked):
                self.pub_tr.publish(cdr_writers.uint8_multi_array(encode_transitions(batch, self.key)))
            self.counters["resends"] += 1
            self.last_resend_time = now  # paces resends; last_ack_time stays the learner's last answer

    # --- e-stop, resume, diagnostics -----------------------------------------------------------
    def on_estop(self, pressed: bool) -> None:
        was = self.safety.estop_pressed
        if self.safety.estop(pressed, self.get_clock().now().nanoseconds * 1e-9) and pressed != was:
            self.get_logger().warning(
                "e-stop pressed: safe mode" if pressed else "e-stop released: call sac_robot/resume to continue"
            )

    def on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """A person says go on: after an e-stop (once released), or after a reset that asked for help."""
        if self.reset.phase == ResetPhase.WAIT_FOR_PERSON:
            ok = self.reset.resume(time.monotonic())
            response.success, response.message = ok, "reset routine restarted" if ok else "could not restart the reset"
            return response
        ok, why = self.safety.request_resume(self.get_clock().now().nanoseconds * 1e-9)
        response.success, response.message = ok, why
        return response

    def on_diagnostics(self) -> None:
        values = {**self.counters, **self.safety.diagnostics(), **self.qos_watch.diagnostics()}
        stats = self.reset.statistics(time.monotonic())
        values.update(
            lifecycle="active" if self.armed else "inactive (not armed: sac-robot arm)",
            reset_phase=str(self.reset.phase),
            reset_status=self.reset_status,
            resets_done=stats.resets_done,
            reset_time_s=f"{stats.time_resetting_s:.1f}",
            resets_per_hour=f"{stats.resets_per_hour:.1f}",
            reset_reasons=json.dumps(stats.reasons),
            waits_for_person=stats.waits_for_person,
            transitions=self.loop.steps,
            episodes=self.loop.episodes,
            unacked=self.loop.unacked_count,
            dropped_unacked=self.loop.dropped_unacked,
            spilled_to_disk=self.loop.unacked.spilled_count,
            policy_version=self.loop.policy_version,
            learner=self._learner_status(),
        )
        level = max(int(self.safety.status_level()), 1 if self.reset.phase == ResetPhase.WAIT_FOR_PERSON else 0)
        level = max(level, self.qos_watch.level)
        message = self.safety.status_message()
        if self.qos_watch.seen:
            message += "; incompatible QoS: " + values["qos_incompatible"]
        if not self.lockstep:
            values.update(self.timing_diagnostics())
            missed, self.missed_reported = self.missed_deadlines - self.missed_reported, self.missed_deadlines
            if missed:
                level = max(level, 1)
                message += f"; {missed} missed control deadline(s) since the last report"
        if not self.armed:
            level, message = max(level, 1), f"not armed (inactive); {message}"
        now = self.get_clock().now().nanoseconds * 1e-9
        name = f"sac_robot/collector/{self.collector_id}"
        self.pub_diag.publish(io.diagnostics_msg(name, self.collector_id, level, message, values, now))

    def close(self) -> None:
        """Send what is left while the context lives; say what was never acknowledged and where it is."""
        if self.loop is None:
            return  # never configured: nothing collected
        batch = self.loop.take_batch(force=True)
        if batch is not None:
            try:
                self.pub_tr.publish(cdr_writers.uint8_multi_array(encode_transitions(batch, self.key)))
            except RuntimeError as err:  # RCLError: the context may already be shut down by the signal handler
                self.get_logger().warning(f"could not send the last {batch.count} transitions: {err}")
        store = self.loop.unacked
        if store.count:
            where = f"; {store.spilled_count} of them in {store.spill_dir}" if store.spilled_count else ""
            self.get_logger().warning(f"{store.count} transitions unacknowledged by the learner at exit{where}")
        store.close()


def main(args: list[str] | None = None) -> int:
    return run_node(CollectorNode, args)


if __name__ == "__main__":
    sys.exit(main())
