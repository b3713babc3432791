# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Learner checkpoints: one safetensors file each, written atomically, the newest few kept.

A checkpoint that fails its checksum is reported with its path and the previous good one is used,
so a crash in the middle of a write (or a disk that filled up) never loses the run.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from sac_robot.core.atomic_io import CorruptFileError, load_tensors, save_tensors

log = logging.getLogger(__name__)
CKPT_RE = re.compile(r"^ckpt_(\d{12})\.safetensors$")


class CheckpointManager:
    """Writes ``checkpoints/ckpt_<env_steps>.safetensors`` and loads the newest one that verifies."""

    def __init__(self, run_dir: str | Path, keep: int = 3) -> None:
        self.dir = Path(run_dir) / "checkpoints"
        self.keep = keep

    def paths(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if CKPT_RE.match(p.name))

    def save(self, step: int, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        path = self.dir / f"ckpt_{step:012d}.safetensors"
        save_tensors(path, tensors, meta)
        for old in self.paths()[: -self.keep]:
            old.unlink()
        return path

    def load_latest(self) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
        """The newest checkpoint that passes its checksum; corrupt ones are named in the log and skipped."""
        errors = []
        for path in reversed(self.paths()):
            try:
                tensors, meta = load_tensors(path)
                return tensors, meta, path
            except CorruptFileError as err:
                log.error("skipping corrupt checkpoint: %s", err)
                errors.append(str(err))
        detail = ("; ".join(errors)) if errors else "none found"
        raise FileNotFoundError(f"no usable checkpoint in {self.dir} ({detail})")
