# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Random transition batches for the tests of the wire format, the learner's ingest and the unacked store."""

from __future__ import annotations

import numpy as np

from sac_robot.core.wire import TransitionBatch


def random_batch(
    first: int, n: int, obs_dim: int, act_dim: int, collector: str, epoch: int, seed: int | None = None
) -> TransitionBatch:
    """``n`` transitions numbered from ``first``; the values come from ``seed`` (default: ``first``)."""
    rng = np.random.default_rng(first if seed is None else seed)
    arrays = {
        "obs": rng.standard_normal((n, obs_dim)).astype(np.float32),
        "action": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        "reward": rng.standard_normal(n).astype(np.float32),
        "next_obs": rng.standard_normal((n, obs_dim)).astype(np.float32),
        "terminated": np.zeros(n, np.float32),
        "truncated": np.zeros(n, np.float32),
        "intervened": np.zeros(n, np.float32),
    }
    return TransitionBatch(collector, epoch, first, arrays)
