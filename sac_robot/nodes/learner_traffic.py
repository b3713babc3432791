# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The collector's side of the learner topics, wired to the plain-Python learner link:

    CollectorLoop batches, episode summaries → /sac_robot/transitions, /sac_robot/episodes
    /sac_robot/policy → PolicyInbox (decoded off the control thread) → swapped in between steps
    /sac_robot/ack    → LearnerLink (progress, liveness, UTD pacing) and the loop's unacked store
    every 2 s (steady clock): what stayed unacknowledged is sent again, paced by LearnerLink

The decisions (when the learner is behind, gone, or due a re-send) live in robot/learner_link.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from sac_robot.core.wire import TransitionBatch, WireError, decode_ack, encode_transitions
from sac_robot.nodes import cdr_writers
from sac_robot.nodes import ros_io as io
from sac_robot.robot.collector_loop import CollectorLoop, StepResult
from sac_robot.robot.learner_link import LearnerLink, PolicyInbox


class LearnerTraffic:
    """Publishers, subscriptions and the re-send timer of one configured collector (rebuilt per configure)."""

    def __init__(
        self,
        node: Node,
        loop: CollectorLoop,
        link: LearnerLink,
        inbox: PolicyInbox,
        key: bytes | None,
        counters: dict[str, int],
        reject: Callable[[str, Exception], None],
        on_progress: Callable[[], None],
        summary_extra: Callable[[], dict[str, object]],
    ) -> None:
        """``counters``: the node's, whose 'resends' this counts; ``reject(what, err)``: count and log a bad message; ``on_progress``: an acknowledgement arrived while
        the simulation waits for the learner; ``summary_extra``: fields added to every episode summary."""
        self.node, self.loop, self.link, self.inbox, self.key = node, loop, link, inbox, key
        self.counters, self.reject = counters, reject
        self.on_progress, self.summary_extra = on_progress, summary_extra
        self.pub_tr = node.create_publisher(UInt8MultiArray, io.TRANSITIONS, io.TRANSITIONS_QOS)
        self.pub_ep = node.create_publisher(String, io.EPISODES, io.EPISODES_QOS)
        node.create_subscription(UInt8MultiArray, io.POLICY, self.on_policy, io.POLICY_QOS)
        node.create_subscription(String, io.ACK, self.on_ack, io.ACK_QOS)
        node.create_timer(2.0, self.resend_unacked, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # --- out ---------------------------------------------------------------------------------------
    def _send(self, batch: TransitionBatch) -> None:
        self.pub_tr.publish(cdr_writers.uint8_multi_array(encode_transitions(batch, self.key)))

    def after_step(self, result: StepResult) -> None:
        """Episode and evaluation summaries of this step, and a batch when one is full (or the episode ended)."""
        for info in (result.episode, result.eval_round):
            if info is not None:
                summary = {**info, "collector_id": self.loop.collector_id, **self.summary_extra()}
                self.pub_ep.publish(String(data=json.dumps(summary)))
        batch = self.loop.take_batch(force=result.reset or result.blind)  # blind: nothing waits for a full batch
        if batch is not None:
            self._send(batch)

    def resend_unacked(self) -> None:
        """Anything unacknowledged for a while is sent again; the learner drops what it already holds."""
        now = time.monotonic()
        if self.link.resend_due(now, bool(self.loop.unacked)):
            for batch in list(self.loop.unacked):
                self._send(batch)
            self.counters["resends"] += 1
            self.link.resent(now)

    def flush(self) -> None:
        """At exit: send what is queued while the context lives; say what was never acknowledged and where."""
        batch = self.loop.take_batch(force=True)
        if batch is not None:
            try:
                self._send(batch)
            except RuntimeError as err:  # RCLError: the context may already be shut down by the signal handler
                self.node.get_logger().warning(f"could not send the last {batch.count} transitions: {err}")
        store = self.loop.unacked
        if store.count:
            where = f"; {store.spilled_count} of them in {store.spill_dir}" if store.spilled_count else ""
            self.node.get_logger().warning(f"{store.count} transitions unacknowledged by the learner at exit{where}")
        store.close()

    # --- in ----------------------------------------------------------------------------------------
    def on_policy(self, msg: UInt8MultiArray) -> None:
        """Weights from the learner: handed to the decoder thread, never decoded on the control thread."""
        self.inbox.put(bytes(msg.data))  # decoded and checked off the control thread

    def swap_policy(self) -> None:
        """Between steps only, so an action is never computed by half an old policy."""
        new = self.inbox.take()
        if new is not None:
            try:
                self.loop.set_policy(*new)
                self.link.on_policy(time.monotonic())
            except ValueError as err:
                self.reject("policy", err)

    def on_ack(self, msg: String) -> None:
        """The learner's progress (for pacing and liveness) and how far our stream is safely on its disk."""
        try:
            ack = decode_ack(msg.data)
        except WireError as err:
            self.reject("message", err)
            return
        mine = ack["collector_id"] == self.loop.collector_id and ack["epoch"] == self.loop.epoch
        progressed = mine and ack["acked_seq"] > self.loop.acked_seq
        self.link.on_ack(ack["updates"], ack["stored"], progressed, time.monotonic())
        if mine:
            self.loop.on_ack(ack["acked_seq"])
        if self.link.waiting:
            self.on_progress()
