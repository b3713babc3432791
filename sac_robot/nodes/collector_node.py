# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Collector node: robot topics in, safe joint commands out, transitions to the learner.

    joint_states, imu/data, odom, scan, foot_contacts, privileged/step   → RobotState (ros_io)
    CollectorLoop.step (observation, policy, SafetyLayer)               → joint_commands
    transitions (batched, numbered, kept until acked)                    → /sac_robot/transitions
    /sac_robot/policy → decoded off the control thread, swapped between steps
    sac_robot/estop and /sac_robot/estop (Bool, any QoS) → SafetyLayer latch; sac_robot/resume (Trigger) releases it
    until the e-stop state is known (robot.safety.estop_grace_s): safe mode in real time, no step in lockstep

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

import math
import socket
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import Trigger

from sac_robot.core.wire import load_key
from sac_robot.nodes import cdr_writers
from sac_robot.nodes import ros_io as io
from sac_robot.nodes.learner_traffic import LearnerTraffic
from sac_robot.nodes.reset_caller import CollectorResets
from sac_robot.nodes.safety_topics import EstopStartup, QosWatch, command_publisher, subscribe_estop
from sac_robot.nodes.sensors import SensorCache
from sac_robot.nodes.spin import destroy_entities, entities, run_node
from sac_robot.robot.collector_loop import CollectorLoop
from sac_robot.robot.collector_status import CollectorParts, collector_status, reset_stats
from sac_robot.robot.control_timing import MISSED_DEADLINE_FACTOR, ControlTiming
from sac_robot.robot.learner_link import LearnerLink, PolicyInbox
from sac_robot.robot.pipeline import load_job
from sac_robot.robot.reset import ResetPhase, ResetRoutine
from sac_robot.robot.robot_step import complete_stamp
from sac_robot.robot.safety import ESTOP_UNKNOWN, LEARNER_GONE, SafetyLayer
from sac_robot.robot.state import RobotState


class CollectorNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("collector")
        config = self.declare_parameter("config", "bipedal_walker").value
        self.job = load_job(config)  # validated once; the parameters below default to its robot section
        rc = self.job.pipe.cfg
        default_id = f"{socket.gethostname()}{self.get_namespace().replace('/', '_')}"
        self.declare_parameter("collector_id", default_id)
        self.declare_parameter("seed", 0)
        self.declare_parameter("key_file", "")
        self.declare_parameter("lockstep", rc.lockstep)
        self.declare_parameter("timing_window_s", 10.0, ParameterDescriptor(dynamic_typing=True))
        autostart = self.declare_parameter("autostart", rc.autostart).value
        self.armed = False  # active: control steps run and commands are published
        self.activations = 0
        self.configures = 0
        self.loop: CollectorLoop | None = None
        self.configure_error: Exception | None = None
        self.inbox = PolicyInbox(None, io.POLICY, lambda err: self._reject("policy", err))  # kept across re-configures
        self._lifecycle_entities = entities(self)  # kept by cleanup: lifecycle and parameter services
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
        self.timing.pause()
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

    def _destroy_configured(self) -> None:
        """Undo configure: every publisher, subscription, service, client and timer it made."""
        self.armed = False
        destroy_entities(self, self._lifecycle_entities)
        if getattr(self, "time_jump", None) is not None:
            self.time_jump.unregister()
            self.time_jump = None
        self.loop = None

    # --- configure: the wiring -----------------------------------------------------------------
    def _configure(self) -> None:
        config = self.get_parameter("config").value
        self.collector_id = self.get_parameter("collector_id").value
        seed = self.get_parameter("seed").value
        if self.configures or config != self.job.source:  # a re-configure reads the file again
            self.job = load_job(config)
        self.configures += 1
        self.cfg, self.pipe = self.job.config, self.job.pipe
        self.key = load_key(self.get_parameter("key_file").value or self.pipe.cfg.security.key_file)
        self.inbox.key = self.key
        rc = self.pipe.cfg
        self.lockstep = self.get_parameter("lockstep").value
        self.period = 1.0 / rc.control_rate_hz
        self.safety = SafetyLayer(rc.safety, self.pipe.description, self.period)
        epoch = int(time.time() * 1000)  # a new epoch per configure: sequence numbers restart at 0
        self.loop = CollectorLoop(self.pipe, self.safety, self.collector_id, epoch, seed)
        self.needs = set(self.pipe.needs)
        self.last_step_stamp = -1.0
        sac = self.cfg.sac
        self.link = LearnerLink(rc, sac.utd, sac.learning_starts, sac.batch_size, self.lockstep, time.monotonic())
        self.counters = dict.fromkeys(("bad_messages", "steps", "resets", "resends", "stalls", "time_jumps"), 0)
        self.last_step_time = time.monotonic()
        self.timing = ControlTiming(self.period, float(self.get_parameter("timing_window_s").value))

        sensor_qos = io.lockstep_qos(self.lockstep)
        self.qos_watch = QosWatch(self)
        self.pub_cmd = command_publisher(self, self.qos_watch, lifecycle=True)
        self.write_cmd = cdr_writers.Float64MultiArrayWriter(self.pipe.act_dim)  # packed bytes: every step
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
        self.estop_startup = EstopStartup(self, self.safety)  # nothing moves before the e-stop state is known
        self.learner = LearnerTraffic(
            self, self.loop, self.link, self.inbox, self.key, self.counters, self._reject, self.kick, self._reset_stats
        )
        self.create_service(Trigger, io.RESUME, self.on_resume)
        routine = ResetRoutine(rc.reset, self.pipe.description, rc.safety, self.period)
        send = lambda command: self.pub_cmd.publish(self.write_cmd(command))
        self.resets = CollectorResets(
            self, routine, self.loop, self._state_or_none, send, self._reset_done, lambda: self.armed
        )
        self.parts = CollectorParts(self.loop, self.safety, routine, self.link, self.timing, self.lockstep)
        # Housekeeping runs on the steady clock: under sim time a stalled simulation would stop ROS-time timers.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
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
    def _reject(self, what: str, err: Exception) -> None:
        self.counters["bad_messages"] += 1
        self.get_logger().warning(f"{what} rejected: {err}", throttle_duration_sec=1.0)

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
        if not self.armed or self.resets.active or not self.safety.estop_known:
            return
        stamp = complete_stamp(self.needs, self.stamps, self.last_step_stamp)
        if stamp is None or self._learner_behind():
            return
        self.last_step_stamp = stamp
        self.control_step(stamp)

    def kick(self) -> None:
        """Lockstep housekeeping: resume after UTD pacing; restart an episode whose messages were lost
        (e.g. the stand-in's first state was published before this node subscribed)."""
        self.resets.caller.raise_deferred()
        if not self.armed:
            return
        if self.resets.active:
            self.resets.tick()  # retries, and waiting for a person, progress on the steady clock
            return
        if self.link.waiting:
            if not self._learner_behind():
                self.link.waiting = False
                self.try_step()
            return
        if not self.safety.estop_known:
            self.last_step_time = time.monotonic()  # the start-up grace holds the first step: no stall
            return
        self.try_step()  # e.g. the first step, held back by the e-stop's start-up grace
        if not self.resets.active and time.monotonic() - self.last_step_time > 2.0:
            self.counters["stalls"] += 1
            self.loop.abort_episode()
            self.request_reset("lost messages")

    def on_control_timer(self) -> None:
        self.resets.caller.raise_deferred()
        if not self.armed:
            return
        missed = self.timing.tick(time.perf_counter())
        if missed is not None:
            self.get_logger().warning(
                f"missed control deadline: period {missed * 1e3:.1f} ms > {MISSED_DEADLINE_FACTOR}× "
                f"{self.period * 1e3:.1f} ms ({self.timing.missed_deadlines} so far)",
                throttle_duration_sec=5.0,
            )
        if self.resets.active:
            self.resets.tick()
            return
        if any(k not in self.latest for k in self.needs):
            return  # a step needs a first message of every topic the observation and reward read
        self.control_step(self.get_clock().now().nanoseconds * 1e-9)

    def control_step(self, now: float) -> None:
        self.last_step_time = time.monotonic()
        self.learner.swap_policy()
        signals = self.latest.get("privileged")
        if not self.safety.estop_known:  # the start-up grace (real time): safe mode, no transition
            result = self.loop.hold(self._state(), now, ESTOP_UNKNOWN)
        elif self._learner_gone() and self.pipe.cfg.on_learner_gone == "safe_mode":
            result = self.loop.hold(self._state(), now, LEARNER_GONE)
        else:
            result = self.loop.step(self._state(), signals, now)
        self.counters["steps"] += 1
        if result.command is not None:
            self.pub_cmd.publish(self.write_cmd(result.command))
        self.learner.after_step(result)
        if result.reset:
            self.request_reset(result.episode.get("end", "episode end") if result.episode else "episode end")

    def _reset_stats(self) -> dict[str, object]:
        return {"reset_stats": reset_stats(self.resets.routine, time.monotonic())}

    def _learner_gone(self) -> bool:
        return self.link.gone(time.monotonic(), bool(self.loop.unacked))

    def _learner_behind(self) -> bool:
        return self.link.behind(self.loop.unacked_count + len(self.loop.outbox), self.loop.policy is not None)

    # --- resets (nodes/reset_caller.CollectorResets runs them) ------------------------------------
    def request_reset(self, reason: str = "episode end") -> None:
        self.last_step_time = time.monotonic()
        self.counters["resets"] += 1
        self.resets.request(reason)

    def _state_or_none(self) -> RobotState | None:
        return self._state() if "joint_states" in self.latest and "imu" in self.latest else None

    def _reset_done(self) -> None:
        if self.lockstep:
            self.try_step()
        else:  # real time: wait for the stand-in's first post-reset signals, never act on the last episode's
            self.latest.pop("privileged", None)

    # --- e-stop, resume, diagnostics -----------------------------------------------------------
    def on_estop(self, pressed: bool) -> None:
        was = self.safety.estop_pressed
        if self.safety.estop(pressed, self.get_clock().now().nanoseconds * 1e-9) and pressed != was:
            self.get_logger().warning(
                "e-stop pressed: safe mode" if pressed else "e-stop released: call sac_robot/resume to continue"
            )

    def on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """A person says go on: after an e-stop (once released), or after a reset that asked for help."""
        if self.resets.routine.phase == ResetPhase.WAIT_FOR_PERSON:
            ok = self.resets.routine.resume(time.monotonic())
            response.success, response.message = ok, "reset routine restarted" if ok else "could not restart the reset"
            return response
        ok, why = self.safety.request_resume(self.get_clock().now().nanoseconds * 1e-9)
        response.success, response.message = ok, why
        return response

    def on_diagnostics(self) -> None:
        qos = self.qos_watch.diagnostics()
        level, message, values = collector_status(
            self.parts, self.counters, qos, self.qos_watch.level, self.resets.status, self.armed, time.monotonic()
        )
        if self.qos_watch.seen:
            message += "; incompatible QoS: " + qos["qos_incompatible"]
        now = self.get_clock().now().nanoseconds * 1e-9
        name = f"sac_robot/collector/{self.collector_id}"
        self.pub_diag.publish(io.diagnostics_msg(name, self.collector_id, level, message, values, now))

    def close(self) -> None:
        if self.loop is not None:  # never configured: nothing collected
            self.learner.flush()


def main(args: list[str] | None = None) -> int:
    return run_node(CollectorNode, args)


if __name__ == "__main__":
    sys.exit(main())
