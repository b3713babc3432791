# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Byte formats that cross the network: transition batches and acknowledgements.

No pickle anywhere: a transitions message is a fixed little-endian header followed by float32
arrays whose sizes the header declares; a decoder checks every size before it touches the data,
so a malformed or hostile message is rejected with a reason, never executed. The topic contract
(docs/topics.md) documents the layout.
"""

from __future__ import annotations

import hmac
import json
import struct
from dataclasses import dataclass

import numpy as np

from sac_robot.policy_runtime import FrozenPolicy

MAGIC = b"SRTB"
VERSION = 1
# magic, version, flags, obs_dim, act_dim, count, epoch, first_seq, id_len, sig_len
_HEADER = struct.Struct("<4sHHIIIQQHH")
_ARRAYS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "intervened")
MAX_COUNT = 100_000
MAX_DIM = 65_536


class WireError(ValueError):
    """A message that does not follow the wire format; the text says what is wrong."""


@dataclass
class TransitionBatch:
    collector_id: str
    epoch: int
    first_seq: int
    arrays: dict[str, np.ndarray]  # every field in _ARRAYS, float32, leading axis = count

    @property
    def count(self) -> int:
        return len(self.arrays["reward"])

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1


def _shapes(count: int, obs_dim: int, act_dim: int) -> dict[str, tuple[int, ...]]:
    return {
        "obs": (count, obs_dim),
        "action": (count, act_dim),
        "reward": (count,),
        "next_obs": (count, obs_dim),
        "terminated": (count,),
        "truncated": (count,),
        "intervened": (count,),
    }


def encode_transitions(batch: TransitionBatch, key: bytes | None = None) -> bytes:
    """Header, collector id, arrays, then (with a key) an HMAC-SHA256 over everything before it."""
    a = batch.arrays
    count, obs_dim, act_dim = batch.count, a["obs"].shape[1], a["action"].shape[1]
    cid = batch.collector_id.encode()
    sig_len = 32 if key else 0
    head = _HEADER.pack(MAGIC, VERSION, 0, obs_dim, act_dim, count, batch.epoch, batch.first_seq, len(cid), sig_len)
    body = b"".join(np.ascontiguousarray(a[name], dtype="<f4").tobytes() for name in _ARRAYS)
    payload = head + cid + body
    if key:
        payload += hmac.digest(key, payload, "sha256")
    return payload


def decode_transitions(data: bytes, key: bytes | None = None) -> TransitionBatch:
    """Validate and decode; raises WireError naming the first problem found."""
    if len(data) < _HEADER.size:
        raise WireError(f"transitions message too short ({len(data)} bytes)")
    magic, version, _flags, obs_dim, act_dim, count, epoch, first_seq, id_len, sig_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError("transitions message has the wrong magic bytes")
    if version != VERSION:
        raise WireError(f"transitions format version {version} is not supported (expected {VERSION})")
    if not (0 < count <= MAX_COUNT and 0 < obs_dim <= MAX_DIM and 0 < act_dim <= MAX_DIM):
        raise WireError(f"transitions header out of range (count {count}, obs {obs_dim}, act {act_dim})")
    shapes = _shapes(count, obs_dim, act_dim)
    n_floats = sum(int(np.prod(s)) for s in shapes.values())
    expected = _HEADER.size + id_len + 4 * n_floats + sig_len
    if len(data) != expected:
        raise WireError(f"transitions message is {len(data)} bytes, its header implies {expected}")
    if key is not None:
        if sig_len != 32:
            raise WireError("transitions message is unsigned but a key is configured")
        if not hmac.compare_digest(hmac.digest(key, data[:-32], "sha256"), data[-32:]):
            raise WireError("transitions message has a wrong signature")
    offset = _HEADER.size
    try:
        collector_id = data[offset : offset + id_len].decode()
    except UnicodeDecodeError:
        raise WireError("transitions message has an invalid collector id") from None
    offset += id_len
    arrays = {}
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        arrays[name] = np.frombuffer(data, dtype="<f4", count=n, offset=offset).reshape(shape).astype(np.float32)
        offset += 4 * n
    for name, arr in arrays.items():
        if not np.all(np.isfinite(arr)):
            raise WireError(f"transitions field {name!r} contains NaN or inf")
    return TransitionBatch(collector_id, epoch, first_seq, arrays)


def encode_ack(collector_id: str, epoch: int, acked_seq: int, learner_updates: int, stored: int) -> str:
    """Learner → collectors: highest contiguous sequence number stored for (collector id, epoch)."""
    return json.dumps(
        {
            "collector_id": collector_id,
            "epoch": epoch,
            "acked_seq": acked_seq,
            "updates": learner_updates,
            "stored": stored,
        }
    )


def decode_ack(text: str) -> dict:
    try:
        ack = json.loads(text)
        return {
            "collector_id": str(ack["collector_id"]),
            "epoch": int(ack["epoch"]),
            "acked_seq": int(ack["acked_seq"]),
            "updates": int(ack["updates"]),
            "stored": int(ack["stored"]),
        }
    except (ValueError, KeyError, TypeError) as err:
        raise WireError(f"malformed ack message ({err})") from None


# --- authenticated policy messages ---------------------------------------------------------------
POLICY_MAGIC = b"SRPS"
_POLICY_HEAD = struct.Struct("<4sHQ")  # magic, run id length, version


def sign_policy(payload: bytes, run_id: str, version: int, key: bytes) -> bytes:
    """A policy file wrapped with its run id, version and an HMAC-SHA256 over all of it."""
    rid = run_id.encode()
    body = _POLICY_HEAD.pack(POLICY_MAGIC, len(rid), version) + rid + payload
    return body + hmac.digest(key, body, "sha256")


def open_policy(data: bytes, key: bytes | None) -> tuple[bytes, str | None, int | None]:
    """(policy file bytes, run id, version); with a key, only correctly signed messages pass."""
    if not data.startswith(POLICY_MAGIC):
        if key is not None:
            raise WireError("policy message is unsigned but a key is configured")
        return data, None, None
    if key is None:
        raise WireError("policy message is signed but no key is configured")
    if len(data) < _POLICY_HEAD.size + 32:
        raise WireError("signed policy message too short")
    if not hmac.compare_digest(hmac.digest(key, data[:-32], "sha256"), data[-32:]):
        raise WireError("policy message has a wrong signature")
    _, id_len, version = _POLICY_HEAD.unpack_from(data)
    start = _POLICY_HEAD.size
    try:
        run_id = data[start : start + id_len].decode()
    except UnicodeDecodeError:
        raise WireError("signed policy message has an invalid run id") from None
    return data[start + id_len : -32], run_id, version


class VersionGate:
    """Accept a policy only with a rising version of the current run: replayed (old) messages are refused.

    A new run id is accepted (a learner started a new run), but a run id that was already replaced
    never comes back, so an old run's recorded messages cannot be replayed either.
    """

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.version = 0
        self.retired: set[str] = set()

    def check(self, run_id: str, version: int) -> str | None:
        """None if acceptable, else the reason it is refused."""
        if run_id in self.retired:
            return f"policy from retired run {run_id!r} (replayed?)"
        if run_id == self.run_id and version <= self.version:
            return f"policy version {version} does not rise above {self.version} (replayed?)"
        return None

    def accept(self, run_id: str, version: int) -> None:
        if self.run_id is not None and run_id != self.run_id:
            self.retired.add(self.run_id)
        self.run_id, self.version = run_id, version


def load_key(path: str | None) -> bytes | None:
    """The shared HMAC key from a file (at least 16 bytes); None when no file is configured."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            key = f.read().strip()
    except OSError as err:
        raise WireError(f"security.key_file: cannot read {path} ({err})") from None
    if len(key) < 16:
        raise WireError(f"security.key_file: {path} holds {len(key)} bytes; use at least 16 random bytes")
    return key


def accept_policy(data: bytes, key: bytes | None, gate: VersionGate, source: str = "policy") -> FrozenPolicy:
    """Verify (signature when keyed, content hash, finite weights, rising version) and decode weights."""
    payload, signed_run, signed_version = open_policy(data, key)
    policy = FrozenPolicy.from_bytes(payload, source)
    run_id, version = str(policy.meta.get("run_id", "")), int(policy.meta.get("version", 0))
    if signed_run is not None and (signed_run, signed_version) != (run_id, version):
        raise WireError("policy metadata does not match its signed run id and version")
    refusal = gate.check(run_id, version)
    if refusal is not None:
        raise WireError(refusal)
    gate.accept(run_id, version)
    return policy
