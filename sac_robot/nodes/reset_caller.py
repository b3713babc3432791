# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The collector's resets: the stand-in's reset service (std_srvs/Trigger), called when the reset routine asks.

One call at a time counts: a newer attempt supersedes an unanswered one (a dead stand-in's), and while the
service is missing (a stand-in restarting) the call waits, bounded by the routine's service_timeout_s. A
future's done callback runs outside the node's guarded callbacks (nodes/spin.py), where an escaping
exception can crash rclpy's EventsExecutor: it is kept and raised by ``raise_deferred`` on the next tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from rclpy.node import Node
from std_srvs.srv import Trigger

from sac_robot.nodes import ros_io as io
from sac_robot.robot.collector_loop import CollectorLoop
from sac_robot.robot.reset import ResetPhase, ResetRoutine
from sac_robot.robot.state import RobotState


class ResetCaller:
    def __init__(self, node: Node, on_answer: Callable[[bool, str], None]) -> None:
        self.client = node.create_client(Trigger, io.RESET)
        self.on_answer = on_answer
        self.wanted = False  # the routine asked for a call that has not been made yet
        self.future = None  # the one call whose answer counts
        self.deferred: Exception | None = None

    def want(self) -> None:
        """The routine asks for a (new) call: an unanswered earlier one no longer counts."""
        self.wanted, self.future = True, None

    def call_if_ready(self) -> str | None:
        """Make the wanted call when the service is there; otherwise say what is being waited for."""
        if not self.wanted:
            return None
        if not self.client.service_is_ready():
            return f"waiting for the reset service {self.client.srv_name}"
        self.wanted = False
        self.future = self.client.call_async(Trigger.Request())
        self.future.add_done_callback(self._done)
        return None

    def _done(self, future) -> None:
        try:
            if future is not self.future:
                return  # the answer to a call that a later attempt superseded
            self.future = None
            response = future.result()
            self.on_answer(response is not None and response.success, getattr(response, "message", "no response"))
        except Exception as err:  # noqa: BLE001 - raised again by raise_deferred()
            self.deferred = err

    def raise_deferred(self) -> None:
        if self.deferred is not None:
            err, self.deferred = self.deferred, None
            raise err


class CollectorResets:
    """The collector's resets: robot/reset.py's routine decides on the steady clock, the stand-in's service is
    called through ResetCaller, and the routine's commands go out through the loop's safety layer (hardware).
    No transitions are produced while a reset runs."""

    def __init__(
        self,
        node: Node,
        routine: ResetRoutine,
        loop: CollectorLoop,
        state: Callable[[], RobotState | None],
        send: Callable[[np.ndarray], None],
        on_done: Callable[[], None],
        armed: Callable[[], bool],
    ) -> None:
        self.node, self.routine, self.loop = node, routine, loop
        self.state, self.send, self.on_done, self.armed = state, send, on_done, armed
        self.caller = ResetCaller(node, self.on_answer)
        self.routine_mode = loop.cfg.reset.mode == "routine"
        self.active = False
        self.status = "idle"

    def request(self, reason: str) -> None:
        """Start the configured reset: the stand-in's service, or the stand-up routine on hardware."""
        self.active = True
        self.routine.start(time.monotonic(), self.state(), reason)
        self.tick()

    def tick(self) -> None:
        """One tick of the reset state machine (retries and waiting for a person progress on the steady clock)."""
        state = self.state()
        step = self.routine.tick(time.monotonic(), state)
        self.status = step.status
        if step.call_service:
            self.caller.want()
        if step.phase == ResetPhase.CALL_SERVICE:
            waiting = self.caller.call_if_ready()  # e.g. a stand-in restarting: wait for it
            if waiting:
                self.status = f"{waiting} ({step.status})"
        if self.routine_mode and state is not None:
            now = self.node.get_clock().now().nanoseconds * 1e-9
            self.send(self.loop.reset_command(step.command, state, now))
        if step.phase == ResetPhase.DONE:
            self.active = False
            self.loop.reset_done(state)
            self.on_done()

    def on_answer(self, ok: bool, message: str) -> None:
        self.routine.service_done(ok, message)
        if not ok:
            self.node.get_logger().warning(f"reset service failed: {message}")
        if self.armed():
            self.tick()
