# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Fault injection below ROS: a full disk while the learner persists and checkpoints, weights messages that
are truncated or have the wrong shapes, malformed episode summaries. Each ends in a counted, logged refusal
and nothing acknowledged that is not on disk. (The node-level faults are in test_faults.py.)"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import numpy as np
import pytest
from batches import random_batch

from sac_robot.core import atomic_io
from sac_robot.core.atomic_io import encode_tensors
from sac_robot.core.config import Config, SACConfig
from sac_robot.core.export import policy_bytes, policy_tensors_and_meta
from sac_robot.core.sac import SAC
from sac_robot.core.wire import TransitionBatch, VersionGate, WireError, accept_policy
from sac_robot.policy_runtime import PolicyFormatError
from sac_robot.training.learner_core import LearnerCore
from sac_robot.training.run_log import read_progress

OBS, ACT = 6, 2


def _core(run_dir: Path, resume: bool = False) -> LearnerCore:
    cfg = Config.model_validate(
        {
            "env": {"id": "Pendulum-v1"},
            "sac": {"hidden_sizes": [8], "batch_size": 4, "learning_starts": 4, "device": "cpu"},
            "replay": {"capacity": 1000, "chunk_size": 100},
        }
    )
    return LearnerCore(cfg, run_dir, OBS, ACT, -np.ones(ACT), np.ones(ACT), resume=resume)


def _batch(first: int, n: int = 10, collector: str = "robot1") -> TransitionBatch:
    return random_batch(first, n, obs_dim=OBS, act_dim=ACT, collector=collector, epoch=1)


class FullDisk:
    """Makes every atomic write fail with ENOSPC while `full` is set, as a full disk does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.refused = 0
        real = atomic_io.atomic_write_bytes

        def write(path: str | Path, data: bytes) -> None:
            if self.full:
                self.refused += 1
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real(path, data)

        monkeypatch.setattr(atomic_io, "atomic_write_bytes", write)


def test_full_disk_acknowledges_nothing_unwritten_and_training_resumes_losing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    disk = FullDisk(monkeypatch)
    core = _core(tmp_path / "run")
    assert core.ingest(_batch(0)) == "stored"
    assert core.flush() == {"robot1|1": 9}
    first_ckpt = core.save_checkpoint()
    assert first_ckpt is not None

    disk.full = True
    assert core.ingest(_batch(10)) == "stored"
    with caplog.at_level(logging.ERROR):
        assert core.flush() == {}, "an acknowledgement for data that is not on disk"
        assert core.save_checkpoint() is None
        assert core.train_step()  # the learner keeps learning from what it holds
    assert core.acked == {"robot1|1": 9}
    assert core.disk_errors >= 2 and "No space left" in core.last_disk_error
    assert "could not write replay chunk" in caplog.text
    assert core.ckpts.paths() == [first_ckpt], "a failed checkpoint replaced the good one"
    assert core.finish() is None  # the final checkpoint fails too: said, not raised
    assert "resume continues from" in caplog.text and first_ckpt.name in caplog.text

    # Space again: the next flush writes everything held and acknowledges it; a resumed learner has it all.
    disk.full = False
    core = _core(tmp_path / "run", resume=True)  # what a restarted learner sees: only the first 10
    assert core.buffer.total == 10
    core.ingest(_batch(10))  # the collector re-sends what was never acknowledged
    assert core.flush() == {"robot1|1": 19}
    assert core.save_checkpoint() is not None
    assert core.finish() is not None
    resumed = _core(tmp_path / "run", resume=True)
    assert resumed.buffer.total == 20
    np.testing.assert_array_equal(resumed.buffer.transitions(10, 20)["obs"], _batch(10).arrays["obs"])


def test_truncated_or_misshapen_weights_are_refused() -> None:
    agent = SAC(OBS, ACT, -np.ones(ACT), np.ones(ACT), SACConfig(hidden_sizes=[8], device="cpu"), seed=0)
    good = policy_bytes(agent, run_id="r", version=1)
    for cut in (0, 7, len(good) // 2, len(good) - 1):
        with pytest.raises((PolicyFormatError, WireError)):
            accept_policy(good[:cut], None, VersionGate())
    tensors, meta = policy_tensors_and_meta(agent, run_id="r", version=2)
    name = next(k for k, v in tensors.items() if v.ndim == 2)
    tensors[name] = np.zeros((tensors[name].shape[0] + 1, tensors[name].shape[1]), np.float32)
    with pytest.raises(PolicyFormatError, match=name.split(".")[0]):
        accept_policy(encode_tensors(tensors, meta), None, VersionGate())
    gate = VersionGate()
    assert accept_policy(good, None, gate).meta["version"] == 1  # the refusals left the gate usable


def test_reset_statistics_reach_progress_csv_and_bad_ones_are_refused(tmp_path: Path) -> None:
    core = _core(tmp_path / "run")
    core.ingest(_batch(0))
    stats = {
        "resets_done": 3,
        "time_resetting_s": 4.5,
        "resets_per_hour": 120.0,
        "waits_for_person": 1,
        "reasons": {"fell": 2, "time limit": 1},
    }
    core.note_episode({"kind": "train", "return": 1.0, "collector_id": "a", "reset_stats": stats})
    core.note_episode(
        {"kind": "train", "return": 2.0, "collector_id": "b", "reset_stats": {**stats, "reasons": {"fell": 1}}}
    )
    core.note_episode({"kind": "eval_round", "returns": [1.0, 2.0], "lengths": [10, 20], "collector_id": "a"})
    for bad in ({"resets_done": "x"}, {"reasons": []}, "not a dict"):
        with pytest.raises((TypeError, KeyError, ValueError)):
            core.note_episode({"kind": "train", "return": 0.0, "collector_id": "c", "reset_stats": bad})
    core.finish()
    row = read_progress(tmp_path / "run")[-1]
    assert (row["resets"], row["reset_time_s"], row["resets_per_hour"], row["waits_for_person"]) == (6, 9, 240, 2)
    assert row["reset_reasons"] == "fell: 3; time limit: 1"
    assert row["eval_return_mean"] == 1.5
