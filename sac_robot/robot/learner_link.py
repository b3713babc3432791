# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""What a collector knows of its learner, from the acknowledgements: how far it has trained, whether it is
still there, when to send unacknowledged transitions again, and (lockstep simulation only) whether the
simulation should wait for it. Plain Python with the time passed in; the collector node wires the topics.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable

from sac_robot.core.utd import updates_due
from sac_robot.core.wire import VersionGate, WireError, accept_policy
from sac_robot.policy_runtime import FrozenPolicy, PolicyFormatError
from sac_robot.robot.pipeline import RobotRunConfig

RESEND_AFTER_S = 3.0  # unacknowledged for this long (and no re-send since): send again


class LearnerLink:
    def __init__(
        self, cfg: RobotRunConfig, utd: int, learning_starts: int, batch_size: int, lockstep: bool, now: float
    ) -> None:
        self.cfg = cfg
        self.utd, self.learning_starts, self.batch_size = utd, learning_starts, batch_size
        self.lockstep = lockstep
        self.updates = 0  # the learner's gradient updates, as its last acknowledgement said
        self.stored = 0  # transitions it has stored, from every collector
        self.last_ack_time = now  # the last acknowledgement that moved this collector's stream forward
        self.last_resend_time = -math.inf
        self.last_policy_time: float | None = None
        self.waiting = False  # lockstep: the simulation is held until the learner catches up
        self.lag_waits = 0

    # --- acknowledgements and policies --------------------------------------------------------------
    def on_ack(self, updates: int, stored: int, progressed: bool, now: float) -> None:
        """Any acknowledgement tells the learner's progress; only one that moved this collector's stream
        forward counts as an answer (a learner that only answers others is silent to us)."""
        self.updates, self.stored = updates, stored
        if progressed:
            self.last_ack_time = now

    def on_policy(self, now: float) -> None:
        self.last_policy_time = now

    # --- liveness ---------------------------------------------------------------------------------------
    def silent_s(self, now: float) -> float:
        return now - self.last_ack_time

    def gone(self, now: float, has_unacked: bool) -> bool:
        """Real time: transitions wait for an acknowledgement that has not come for policy_timeout_s."""
        return not self.lockstep and has_unacked and self.silent_s(now) > self.cfg.policy_timeout_s

    def resend_due(self, now: float, has_unacked: bool) -> bool:
        """Anything unacknowledged for a while is sent again (the learner drops what it already holds);
        re-sends are paced by their own clock, so they never look like answers from the learner."""
        return has_unacked and now - max(self.last_ack_time, self.last_resend_time) > RESEND_AFTER_S

    def resent(self, now: float) -> None:
        self.last_resend_time = now

    def status(self, now: float, unacked: int, has_policy: bool) -> str:
        """What the operator needs to know about the learner: a silent learner is said out loud."""
        silent = self.silent_s(now)
        if unacked and silent > self.cfg.policy_timeout_s:
            if self.waiting:
                action = "holding (waiting for it)"
            elif self.cfg.on_learner_gone == "safe_mode" and not self.lockstep:
                action = "safe mode until it is back (on_learner_gone: safe_mode)"
            else:
                action = "running the last policy" if has_policy else "acting randomly as before"
            return f"no acknowledgement for {silent:.0f} s: {action}; {unacked} transitions kept"
        return "ok" if self.last_policy_time else "no policy yet (random actions)"

    # --- lockstep pacing --------------------------------------------------------------------------------
    def behind(self, in_flight: int, has_policy: bool) -> bool:
        """Simulation only (lockstep and wait_for_learner): hold the next step while the learner owes more than
        max_learner_lag_steps of updates for the data sent (core/utd.py's rule), or, before the first policy,
        while it has not stored what was sent: a learner that starts late must not miss the run."""
        if not (self.lockstep and self.cfg.wait_for_learner):
            return False
        max_lag = self.cfg.max_learner_lag_steps
        if not has_policy:
            behind = in_flight > max(self.learning_starts, self.cfg.send_batch) + max_lag
        else:
            owed = updates_due(self.stored + in_flight, self.utd, self.learning_starts, self.batch_size) - self.updates
            behind = owed > self.utd * (max_lag + 1)  # +1: updates_due counts the transition at learning_starts
        if behind and not self.waiting:
            self.waiting = True
            self.lag_waits += 1
        return behind


class PolicyInbox:
    """Policies from the learner, decoded and checked (signature, hash, finite weights, rising version) on a
    thread of their own, so the control thread only swaps in the newest one between steps. A policy that
    fails a check is reported through ``on_reject`` and never taken."""

    def __init__(self, key: bytes | None, source: str, on_reject: Callable[[Exception], None]) -> None:
        self.key, self.source, self.on_reject = key, source, on_reject
        self.gate = VersionGate()  # kept across re-configures: an old policy is never taken again
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=2)
        self.lock = threading.Lock()
        self.newest: tuple[FrozenPolicy, int] | None = None
        threading.Thread(target=self._decode, name="policy-decoder", daemon=True).start()

    def put(self, data: bytes) -> None:
        try:
            self.queue.put_nowait(data)
        except queue.Full:
            pass  # a newer one is being decoded already

    def _decode(self) -> None:
        while True:
            data = self.queue.get()
            try:
                policy = accept_policy(data, self.key, self.gate, self.source)
            except (PolicyFormatError, WireError) as err:
                self.on_reject(err)
                continue
            with self.lock:
                self.newest = (policy, int(policy.meta["version"]))

    def take(self) -> tuple[FrozenPolicy, int] | None:
        """The newest decoded policy and its version, once; None when nothing new arrived."""
        with self.lock:
            new, self.newest = self.newest, None
        return new
