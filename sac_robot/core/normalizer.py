# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Running observation normalisation.

Observations are stored raw in the replay buffer and normalised when used, so statistics can keep
improving without rewriting stored data; on export the statistics are frozen into the policy file.
"""

from __future__ import annotations

import numpy as np

CLIP = 10.0
EPS = 1e-8


class RunningNormalizer:
    """Mean and variance over every observation seen (Chan et al. parallel update)."""

    def __init__(self, shape: int | tuple[int, ...], enabled: bool = True) -> None:
        self.enabled = enabled
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch (B, *shape) or a single observation into the statistics."""
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim == self.mean.ndim:
            batch = batch[None]
        if not np.all(np.isfinite(batch)):
            raise ValueError("normaliser update: observation contains NaN or inf")
        n = batch.shape[0]
        if n == 0:
            return
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var + EPS)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return obs.astype(np.float32, copy=False)
        return np.clip((obs - self.mean) / self.std, -CLIP, CLIP).astype(np.float32)

    def frozen(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) as float32 for export; identity when disabled."""
        if not self.enabled:
            return np.zeros_like(self.mean, dtype=np.float32), np.ones_like(self.mean, dtype=np.float32)
        return self.mean.astype(np.float32), self.std.astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array([self.count])}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["mean"].shape != self.mean.shape:
            raise ValueError(f"normaliser shape {state['mean'].shape} does not match {self.mean.shape}")
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.var = np.array(state["var"], dtype=np.float64)
        self.count = float(np.asarray(state["count"]).reshape(-1)[0])
