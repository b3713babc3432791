# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The learner without ROS: ingest transition batches, train in a thread, persist, checkpoint.

Exactly-once storage: each (collector id, epoch) has a highest contiguous sequence number stored;
a batch that repeats stored sequence numbers is trimmed, one that leaves a gap is refused (the
collector re-sends from its unacknowledged queue). Acknowledgements are only given for what is on
disk: every flush writes one replay chunk whose metadata holds the acknowledgement table, so a
learner killed at any moment restarts knowing exactly which transitions it holds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sac_robot.core.checkpoint import CheckpointManager
from sac_robot.core.config import Config
from sac_robot.core.export import export_policy, policy_bytes
from sac_robot.core.replay import ChunkStore, ReplayBuffer
from sac_robot.core.sac import SAC
from sac_robot.core.utd import actor_update_due, updates_due
from sac_robot.core.wire import TransitionBatch
from sac_robot.training.run_log import RunLog
from sac_robot.training.trainer import prepare_run_dir, write_run_config

log = logging.getLogger(__name__)
ONE_CHUNK = 1 << 40  # flushes write everything pending as a single chunk (see module docstring)


def stream_key(collector_id: str, epoch: int) -> str:
    return f"{collector_id}|{epoch}"


class LearnerCore:
    def __init__(
        self,
        cfg: Config | None,
        run_dir: str | Path,
        obs_dim: int,
        act_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        resume: bool = False,
        policy_info: dict[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.cfg = prepare_run_dir(self.run_dir, cfg, resume)
        if not resume:
            write_run_config(self.run_dir, self.cfg)
        c = self.cfg
        self.agent = SAC(obs_dim, act_dim, action_low, action_high, c.sac, c.train.seed)
        self.buffer = ReplayBuffer(c.replay.capacity, obs_dim, act_dim)
        self.store = ChunkStore(self.run_dir / "replay")
        self.ckpts = CheckpointManager(self.run_dir, keep=c.train.keep_checkpoints)
        self.sample_rng = np.random.default_rng(c.train.seed + 2)
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}  # highest contiguous seq in the buffer, per stream
        self.reset_stats: dict[str, dict[str, Any]] = {}  # per collector, from its episode summaries
        self.acked: dict[str, int] = {}  # highest contiguous seq on disk, per stream
        self.rejected: dict[str, int] = {"gap": 0, "duplicate": 0, "shape": 0}
        self.disk_errors = 0
        self.last_disk_error = ""
        self.train_returns: deque[float] = deque(maxlen=20)
        self.episodes = 0
        self.elapsed_before = 0.0
        self.t_start = time.perf_counter()
        self.run_id = uuid.uuid4().hex[:12]
        self.policy_version = 0
        self.policy_info = policy_info or {}
        self.last_metrics: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_policy: Callable[[bytes, int], None] | None = None
        self._ups_window: deque[tuple[float, int]] = deque(maxlen=50)
        if resume:
            self._restore()
        self.runlog = RunLog(self.run_dir, extra_columns=RESET_COLUMNS)

    # --- data in ---------------------------------------------------------------------------------
    def ingest(self, batch: TransitionBatch) -> str:
        """Store a batch exactly once; returns 'stored', 'duplicate', 'gap' or 'shape'."""
        a = batch.arrays
        if a["obs"].shape[1] != self.buffer.obs_dim or a["action"].shape[1] != self.buffer.act_dim:
            self.rejected["shape"] += 1
            return "shape"
        key = stream_key(batch.collector_id, batch.epoch)
        have = self.received.get(key, -1)
        if batch.last_seq <= have:
            self.rejected["duplicate"] += 1
            return "duplicate"
        if batch.first_seq > have + 1:
            self.rejected["gap"] += 1
            return "gap"
        skip = have + 1 - batch.first_seq  # overlap with what is stored already
        arrays = {k: v[skip:] for k, v in a.items()} if skip else a
        with self.lock:
            self.buffer.add_batch(arrays)
            self.agent.normalizer.update(arrays["obs"])
            self.received[key] = batch.last_seq
        return "stored"

    def note_episode(self, info: dict[str, Any]) -> None:
        """Episode summaries from collectors: training returns, and evaluation rounds (one progress row each)."""
        if "reset_stats" in info:  # each collector's running totals: the newest replaces the older
            self.reset_stats[str(info.get("collector_id", "?"))] = _reset_stats(info["reset_stats"])
        if info.get("kind") == "train":
            self.episodes += 1
            self.train_returns.append(float(info["return"]))
        elif info.get("kind") == "eval_round":
            r, n = np.asarray(info["returns"], float), np.asarray(info["lengths"], float)
            self.runlog.row(
                {
                    "time_s": self.elapsed(),
                    "env_steps": self.buffer.total,
                    "updates": self.agent.updates,
                    "episodes": self.episodes,
                    "train_return_mean": float(np.mean(self.train_returns)) if self.train_returns else float("nan"),
                    "eval_return_mean": float(r.mean()),
                    "eval_return_std": float(r.std()),
                    "eval_len_mean": float(n.mean()),
                    "alpha": self.agent.alpha,
                    "q_loss": float(self.last_metrics.get("q_loss", float("nan"))),
                    "pi_loss": float(self.last_metrics.get("pi_loss", float("nan"))),
                    "updates_per_s": self.updates_per_s(),
                    **self.reset_columns(),
                }
            )

    def reset_columns(self) -> dict[str, Any]:
        """Reset time, rate and reasons summed over collectors (robot time lost to resets, for the report)."""
        stats = list(self.reset_stats.values())
        if not stats:
            return {}
        reasons: dict[str, int] = {}
        for s in stats:
            for reason, n in s["reasons"].items():
                reasons[reason] = reasons.get(reason, 0) + n
        return {
            "resets": sum(s["resets_done"] for s in stats),
            "reset_time_s": sum(s["time_resetting_s"] for s in stats),
            "resets_per_hour": sum(s["resets_per_hour"] for s in stats),
            "waits_for_person": sum(s["waits_for_person"] for s in stats),
            "reset_reasons": "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
        }

    def flush(self) -> dict[str, int]:
        """Persist everything received as one chunk, then acknowledge it; returns streams whose ack advanced."""
        with self.lock:
            received = dict(self.received)
            if self.buffer.total > self.buffer.persisted:
                try:
                    self.buffer.persist(self.store, ONE_CHUNK, final=True, extra={"acks": received})
                except OSError as err:  # e.g. disk full: acknowledge nothing new; the next flush retries
                    self._disk_error(f"replay chunk in {self.store.root}", err)
                    return {}
        advanced = {k: v for k, v in received.items() if self.acked.get(k, -1) != v}
        self.acked = received
        return advanced

    # --- training --------------------------------------------------------------------------------
    def updates_due(self) -> int:
        """Updates the UTD ratio allows for the data stored so far (core/utd.py)."""
        sac = self.cfg.sac
        return updates_due(self.buffer.total, sac.utd, sac.learning_starts, sac.batch_size)

    def train_step(self) -> bool:
        """One update if one is due; False when waiting for data."""
        if self.agent.updates >= self.updates_due():
            return False
        with self.lock:
            batch = self.buffer.sample(self.cfg.sac.batch_size, self.sample_rng)
        sac = self.cfg.sac
        update_actor = actor_update_due(self.agent.updates, sac.utd, sac.actor_updates_per_step)
        self.last_metrics = self.agent.update(batch, update_actor=update_actor)
        self._ups_window.append((time.perf_counter(), self.agent.updates))
        return True

    def policy_message(self) -> tuple[bytes, int]:
        self.policy_version += 1
        data = policy_bytes(self.agent, run_id=self.run_id, version=self.policy_version, **self.policy_info)
        return data, self.policy_version

    def start(self, on_policy: Callable[[bytes, int], None], publish_every: int) -> None:
        self._on_policy = on_policy
        self._thread = threading.Thread(target=self._loop, args=(publish_every,), name="learner", daemon=True)
        self._thread.start()

    def _loop(self, publish_every: int) -> None:
        next_ckpt = time.perf_counter() + 60.0
        published_any = False
        while not self._stop.is_set():
            if not self.train_step():
                self._stop.wait(0.002)
                continue
            if self.agent.updates % publish_every == 0 or not published_any:
                self._on_policy(*self.policy_message())
                published_any = True
            if time.perf_counter() >= next_ckpt:
                saved = self.save_checkpoint() is not None
                next_ckpt = time.perf_counter() + (60.0 if saved else 10.0)  # a full disk: try again soon

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def updates_per_s(self) -> float:
        if len(self._ups_window) < 2:
            return 0.0
        (t0, u0), (t1, u1) = self._ups_window[0], self._ups_window[-1]
        return (u1 - u0) / (t1 - t0) if t1 > t0 else 0.0

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    # --- state -----------------------------------------------------------------------------------
    def _disk_error(self, what: str, err: OSError) -> None:
        """Counted and logged; training goes on, and collectors keep what is not acknowledged."""
        self.disk_errors += 1
        self.last_disk_error = f"{what}: {err.strerror or err}"
        log.error("could not write %s (%s); will retry, nothing unwritten is acknowledged", what, err)

    def save_checkpoint(self) -> Path | None:
        """The checkpoint's path, or None when the disk refused it (logged and counted; the previous
        checkpoint stays the newest, and the data since is still acknowledged only once on disk)."""
        self.flush()
        if self.buffer.persisted < self.buffer.total:
            log.error("checkpoint skipped: replay data since %d is not on disk yet", self.buffer.persisted)
            return None
        with self.lock:
            tensors, meta = self.agent.state_dict()
        meta["learner"] = {
            "buffer_total": self.buffer.total,
            "acked": self.acked,
            "episodes": self.episodes,
            "train_returns": list(self.train_returns),
            "elapsed_s": self.elapsed(),
            "run_id": self.run_id,
            "policy_version": self.policy_version,
            "sample_rng": self.sample_rng.bit_generator.state,
        }
        try:
            return self.ckpts.save(self.buffer.total, tensors, meta)
        except OSError as err:
            self._disk_error(f"checkpoint in {self.ckpts.dir}", err)
            return None

    def _restore(self) -> None:
        try:
            tensors, meta, path = self.ckpts.load_latest()
        except FileNotFoundError:
            tensors, meta, path = None, None, None
            log.warning("no checkpoint in %s: keeping the replay data, starting the networks afresh", self.run_dir)
        if tensors is not None:
            self.agent.load_state_dict(tensors, meta)
            s = meta["learner"]
            self.episodes, self.elapsed_before = s["episodes"], s["elapsed_s"]
            self.train_returns.extend(s["train_returns"])
            self.run_id, self.policy_version = s["run_id"], s["policy_version"]
            self.sample_rng.bit_generator.state = s["sample_rng"]
        # Every acknowledged transition is on disk, also those that arrived after the checkpoint.
        self.buffer.restore(self.store)
        newer = self.buffer.total - (meta["learner"]["buffer_total"] if meta is not None else 0)
        if 0 < newer <= len(self.buffer):  # fold observations stored after the checkpoint into the normaliser
            self.agent.normalizer.update(self.buffer.transitions(self.buffer.total - newer, self.buffer.total)["obs"])
        self.received = dict(self.store.last_meta().get("acks", {}))
        self.acked = dict(self.received)
        log.info("resumed from %s with %d transitions", path, self.buffer.total)

    def finish(self) -> Path | None:
        """Final checkpoint and frozen policy; None (after saying why) when the disk refused them."""
        try:
            if self.save_checkpoint() is None:
                raise OSError(self.last_disk_error or "the replay data could not be written")
            export_policy(self.agent, self.run_dir / "policy.safetensors", run_id=self.run_id, **self.policy_info)
            return self.run_dir / "policy.safetensors"
        except OSError as err:
            log.error(
                "final checkpoint or policy not written (%s); resume continues from %s",
                err,
                self.ckpts.paths()[-1] if self.ckpts.paths() else "the replay data alone",
            )
            return None
        finally:
            self.runlog.close()


RESET_COLUMNS = ["resets", "reset_time_s", "resets_per_hour", "waits_for_person", "reset_reasons"]


def _reset_stats(raw: Any) -> dict[str, Any]:
    """A collector's reset statistics, type-checked (they arrive over the network)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("reasons", {}), dict):
        raise TypeError("reset_stats must be an object with a 'reasons' object")
    reasons = {str(k): int(v) for k, v in raw.get("reasons", {}).items()}
    return {
        "resets_done": int(raw["resets_done"]),
        "time_resetting_s": float(raw["time_resetting_s"]),
        "resets_per_hour": float(raw["resets_per_hour"]),
        "waits_for_person": int(raw["waits_for_person"]),
        "reasons": reasons,
    }
