# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A collector's unacknowledged transitions: the newest in memory, older ones spilled to the robot's disk, all
re-sent oldest first until the learner acknowledges them, bounded with every drop counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from batches import random_batch

from sac_robot.core.wire import TransitionBatch
from sac_robot.robot.unacked import UnackedStore


def _batch(first: int, n: int = 10) -> TransitionBatch:
    return random_batch(first, n, obs_dim=3, act_dim=2, collector="robot/1", epoch=7)


def test_spills_beyond_memory_resends_in_order_and_forgets_what_is_acknowledged(tmp_path: Path) -> None:
    store = UnackedStore(tmp_path / "spill", memory_limit=25, limit=1000)
    for first in range(0, 100, 10):
        store.append(_batch(first))
    assert store.count == 100 and store.memory_count <= 25 and store.spilled_count == 100 - store.memory_count
    assert len(list((tmp_path / "spill").iterdir())) == len(store.spilled)
    resent = list(store)
    assert [b.first_seq for b in resent] == list(range(0, 100, 10))
    for b in resent:
        np.testing.assert_array_equal(b.arrays["obs"], _batch(b.first_seq).arrays["obs"])
    store.acknowledge(49)  # the learner has 0..49 on disk
    assert store.count == 50 and [b.first_seq for b in store] == [50, 60, 70, 80, 90]
    assert len(list((tmp_path / "spill").iterdir())) == len(store.spilled)
    store.acknowledge(99)
    assert store.count == 0 and not store and not list((tmp_path / "spill").iterdir())
    store.close()
    assert not (tmp_path / "spill").exists()


def test_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    store = UnackedStore(tmp_path / "spill", memory_limit=20, limit=50)
    for first in range(0, 80, 10):
        store.append(_batch(first))
    assert store.count == 50 and store.dropped == 30
    assert [b.first_seq for b in store] == [30, 40, 50, 60, 70]


def test_unwritable_disk_keeps_batches_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the spill folder should be")
    store = UnackedStore(blocker / "spill", memory_limit=10, limit=1000)
    for first in range(0, 50, 10):
        store.append(_batch(first))
    assert store.count == 50 and store.spilled_count == 0 and store.spill_errors >= 1
    assert [b.first_seq for b in store] == [0, 10, 20, 30, 40]


def test_corrupt_spill_file_is_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = UnackedStore(tmp_path / "spill", memory_limit=10, limit=1000)
    for first in range(0, 30, 10):
        store.append(_batch(first))
    path = store.spilled[0][0]
    path.write_bytes(path.read_bytes()[:-7])
    assert [b.first_seq for b in store] == [10, 20]
    assert store.spill_errors == 1 and path.name in caplog.text
