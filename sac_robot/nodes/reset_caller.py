# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The stand-in's reset service (std_srvs/Trigger), called when the reset routine asks for it.

One call at a time counts: a newer attempt supersedes an unanswered one (a dead stand-in's), and while the
service is missing (a stand-in restarting) the call waits, bounded by the routine's service_timeout_s. A
future's done callback runs outside the node's guarded callbacks (nodes/spin.py), where an escaping
exception can crash rclpy's EventsExecutor: it is kept and raised by ``raise_deferred`` on the next tick.
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node
from std_srvs.srv import Trigger

from sac_robot.nodes import ros_io as io


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
