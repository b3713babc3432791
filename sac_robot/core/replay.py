# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""What is remembered: a ring buffer in preallocated numpy arrays, persisted as it fills.

Robot data is the scarcest thing a user has, so the buffer is written to disk incrementally as
append-only chunks (atomic, checksummed) named by the global index of their first transition.
Restoring replays the chunks in order; a corrupt chunk is reported with its path and set aside,
never silently used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sac_robot.core.atomic_io import CorruptFileError, load_tensors, save_tensors

log = logging.getLogger(__name__)

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "intervened")
CHUNK_RE = re.compile(r"^chunk_(\d{12})_(\d+)\.safetensors$")


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions; ``total`` counts every transition ever added."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = capacity
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "action": np.zeros((capacity, act_dim), np.float32),
            "reward": np.zeros((capacity,), np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "terminated": np.zeros((capacity,), np.float32),
            "truncated": np.zeros((capacity,), np.float32),
            "intervened": np.zeros((capacity,), np.float32),
        }
        self.total = 0
        self.persisted = 0  # global index up to which transitions are on disk

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
        intervened: bool = False,
    ) -> None:
        i = self.total % self.capacity
        d = self.data
        d["obs"][i] = obs
        d["action"][i] = action
        d["reward"][i] = reward
        d["next_obs"][i] = next_obs
        d["terminated"][i] = terminated
        d["truncated"][i] = truncated
        d["intervened"][i] = intervened
        self.total += 1

    def add_batch(self, batch: dict[str, np.ndarray]) -> None:
        """Append a batch of transitions (every field, same length), wrapping around as needed."""
        n = len(batch["reward"])
        for name in FIELDS:
            if len(batch[name]) != n:
                raise ValueError(f"replay batch field {name!r} has length {len(batch[name])}, expected {n}")
        if n > self.capacity:  # only the newest `capacity` survive anyway
            batch = {k: v[-self.capacity :] for k, v in batch.items()}
            self.total += n - self.capacity
            n = self.capacity
        start = self.total % self.capacity
        first = min(n, self.capacity - start)
        for name in FIELDS:
            values = np.asarray(batch[name], dtype=np.float32)
            self.data[name][start : start + first] = values[:first]
            self.data[name][: n - first] = values[first:]
        self.total += n

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.total == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, len(self), size=batch_size)
        return {name: arr[idx] for name, arr in self.data.items()}

    def transitions(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Transitions with global indices [start, stop), which must still be held."""
        if start < self.total - self.capacity:
            raise ValueError(f"transitions from {start} were overwritten before being persisted")
        idx = np.arange(start, stop) % self.capacity
        return {name: arr[idx] for name, arr in self.data.items()}

    # --- persistence -------------------------------------------------------------------------
    def persist(self, store: ChunkStore, chunk_size: int, final: bool = False, extra: dict | None = None) -> int:
        """Write every full chunk not yet on disk (and the partial tail if ``final``); returns chunks written.

        ``extra`` is stored in each chunk's metadata (the learner records its acknowledgements there).
        """
        written = 0
        while self.total - self.persisted >= chunk_size or (final and self.total > self.persisted):
            stop = min(self.persisted + chunk_size, self.total)
            store.write(self.persisted, self.transitions(self.persisted, stop), extra)
            self.persisted = stop
            written += 1
        return written

    def restore(self, store: ChunkStore, upto: int | None = None) -> None:
        """Refill from disk: every chunk in order, up to global index ``upto`` (None = all)."""
        self.total = 0
        for chunk in store.chunks():
            if upto is not None and chunk.start >= upto:
                break
            if chunk.start != self.total:
                raise CorruptFileError(
                    f"{store.root}: replay chunks are not contiguous (expected index {self.total}, "
                    f"found a chunk starting at {chunk.start}); a chunk is missing or was set aside"
                )
            arrays = store.read(chunk)
            if upto is not None and chunk.stop > upto:  # written after the checkpoint: cut it back to match
                arrays = {k: v[: upto - chunk.start] for k, v in arrays.items()}
                store.write(chunk.start, arrays)
                chunk.path.unlink()
            self.add_batch(arrays)
        self.persisted = self.total
        if upto is not None and self.total < upto:
            raise CorruptFileError(f"{store.root}: holds {self.total} transitions, the checkpoint expects {upto}")
        store.truncate_after(self.total)

    def state_counters(self) -> dict[str, int]:
        return {"total": self.total, "persisted": self.persisted}


@dataclass(frozen=True)
class Chunk:
    path: Path
    start: int
    count: int

    @property
    def stop(self) -> int:
        return self.start + self.count


class ChunkStore:
    """A folder of append-only replay chunks."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, start: int, arrays: dict[str, np.ndarray], extra: dict | None = None) -> Path:
        count = len(arrays["reward"])
        path = self.root / f"chunk_{start:012d}_{count}.safetensors"
        save_tensors(path, arrays, {"start": start, "count": count, **(extra or {})})
        return path

    def chunks(self) -> Iterator[Chunk]:
        found = []
        for p in self.root.iterdir():
            m = CHUNK_RE.match(p.name)
            if m:
                found.append(Chunk(p, int(m.group(1)), int(m.group(2))))
        yield from sorted(found, key=lambda c: c.start)

    def read(self, chunk: Chunk) -> dict[str, np.ndarray]:
        return self.read_with_meta(chunk)[0]

    def read_with_meta(self, chunk: Chunk) -> tuple[dict[str, np.ndarray], dict]:
        try:
            arrays, meta = load_tensors(chunk.path)
            missing = [f for f in FIELDS if f not in arrays]
            if missing or meta.get("start") != chunk.start or len(arrays["reward"]) != chunk.count:
                raise CorruptFileError(f"{chunk.path}: header does not match its name or misses {missing}")
        except CorruptFileError:
            quarantined = chunk.path.with_suffix(".corrupt")
            chunk.path.rename(quarantined)
            log.error("replay chunk %s is corrupt; moved to %s", chunk.path, quarantined)
            raise
        return arrays, meta

    def last_meta(self) -> dict:
        """Metadata of the newest chunk (empty when there is none)."""
        chunks = list(self.chunks())
        return self.read_with_meta(chunks[-1])[1] if chunks else {}

    def truncate_after(self, total: int) -> None:
        """Remove chunks that begin at or after ``total`` (written after the checkpoint being resumed)."""
        for chunk in list(self.chunks()):
            if chunk.start >= total:
                chunk.path.unlink()
