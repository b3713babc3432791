# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Transitions sent but not yet acknowledged by the learner: kept until it confirms they are on its disk.

While the learner is away (restarting, network down) a robot keeps collecting: the newest batches stay in
memory (up to ``memory_limit`` transitions), older ones are spilled to files on the robot's disk (the wire
format, no pickle), and all of them are re-sent, oldest first, until acknowledged. The total is bounded by
``limit``: beyond it the oldest batches are dropped and counted, never silently.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from sac_robot.core.atomic_io import atomic_write_bytes
from sac_robot.core.wire import TransitionBatch, WireError, decode_transitions, encode_transitions

log = logging.getLogger(__name__)


class UnackedStore:
    def __init__(self, spill_dir: Path, memory_limit: int, limit: int) -> None:
        self.spill_dir = Path(spill_dir)
        self.memory_limit, self.limit = memory_limit, limit
        self.memory: deque[TransitionBatch] = deque()
        self.spilled: deque[tuple[Path, int, int]] = deque()  # (file, first_seq, count), oldest first
        self.memory_count = self.spilled_count = 0
        self.dropped = 0  # transitions given up because the total bound was reached
        self.spill_errors = 0

    @property
    def count(self) -> int:
        return self.memory_count + self.spilled_count

    def __bool__(self) -> bool:
        return self.count > 0

    def append(self, batch: TransitionBatch) -> None:
        self.memory.append(batch)
        self.memory_count += batch.count
        while self.memory_count > self.memory_limit and len(self.memory) > 1:
            self._spill(self.memory.popleft())
        while self.count > self.limit:
            self._drop_oldest()

    def _spill(self, batch: TransitionBatch) -> None:
        self.memory_count -= batch.count
        path = self.spill_dir / f"{batch.epoch}_{batch.first_seq:012d}.srtb"  # the folder is the collector run's
        try:
            atomic_write_bytes(path, encode_transitions(batch))
        except OSError as err:  # a full or read-only disk: keep it in memory rather than lose it
            self.spill_errors += 1
            log.error("could not spill transitions to %s (%s): kept in memory", path, err)
            self.memory.appendleft(batch)
            self.memory_count += batch.count
            self.memory_limit = self.memory_count  # stop trying until acknowledgements make room
            return
        self.spilled.append((path, batch.first_seq, batch.count))
        self.spilled_count += batch.count

    def _drop_oldest(self) -> None:
        if self.spilled:
            path, _, count = self.spilled.popleft()
            path.unlink(missing_ok=True)
            self.spilled_count -= count
        else:
            count = self.memory.popleft().count
            self.memory_count -= count
        self.dropped += count

    def acknowledge(self, acked_seq: int) -> None:
        """Forget every batch whose last transition is at or below ``acked_seq`` (it is on the learner's disk)."""
        while self.spilled and self.spilled[0][1] + self.spilled[0][2] - 1 <= acked_seq:
            path, _, count = self.spilled.popleft()
            path.unlink(missing_ok=True)
            self.spilled_count -= count
        while self.memory and self.memory[0].last_seq <= acked_seq:
            self.memory_count -= self.memory.popleft().count

    def __iter__(self) -> Iterator[TransitionBatch]:
        """Every unacknowledged batch, oldest first (spilled ones read back and checked)."""
        for path, _, _ in list(self.spilled):
            try:
                yield decode_transitions(path.read_bytes())
            except (OSError, WireError) as err:
                self.spill_errors += 1
                log.error("spilled transitions %s unreadable (%s): skipped", path, err)
        yield from list(self.memory)

    def close(self) -> None:
        """Remove the spill folder if nothing is left in it."""
        try:
            self.spill_dir.rmdir()
        except OSError:
            pass
