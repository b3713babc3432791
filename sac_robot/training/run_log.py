# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""What a run writes for people to read: progress.csv (one row per evaluation) and TensorBoard.

The in-process trainer and the ROS learner node both write through this, so their run
directories have one layout and `sac-robot plot` reads either.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

PROGRESS_COLUMNS = [
    "time_s",
    "env_steps",
    "updates",
    "episodes",
    "train_return_mean",
    "eval_return_mean",
    "eval_return_std",
    "eval_len_mean",
    "alpha",
    "q_loss",
    "pi_loss",
    "updates_per_s",
]


class RunLog:
    """Appends progress rows (flushed and fsynced: a crash loses no row) and mirrors them to TensorBoard."""

    def __init__(self, run_dir: str | Path, extra_columns: list[str] | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "progress.csv"
        self.columns = PROGRESS_COLUMNS + [c for c in (extra_columns or []) if c not in PROGRESS_COLUMNS]
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:  # a resumed run keeps the header it started with, so every row lines up with it
            with open(self.path, newline="", encoding="utf-8") as f:
                self.columns = next(csv.reader(f), None) or self.columns
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - open for the run
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self._csv.writeheader()
            self._file.flush()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def row(self, values: dict[str, Any]) -> None:
        self._csv.writerow({k: _fmt(values.get(k)) for k in self.columns})
        self._file.flush()
        os.fsync(self._file.fileno())
        if self._tb is not None:
            step = int(values["env_steps"])
            for key, value in values.items():
                if key not in ("env_steps", "time_s") and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(f"progress/{key}", value, step)
            self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def read_progress(run_dir: str | Path) -> list[dict[str, Any]]:
    """progress.csv as a list of rows: numbers as floats (empty cells NaN), text columns (reset_reasons) as text."""
    with open(Path(run_dir) / "progress.csv", newline="", encoding="utf-8") as f:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _cell(value: str | None) -> float | str:
    if value in ("", None):
        return math.nan
    try:
        return float(value)
    except ValueError:
        return value
