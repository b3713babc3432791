# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Crash-safe files: write to a temporary name, fsync, rename, fsync the folder.

A reader therefore sees either the old file or the new one, never half of one, even if the
process is killed or the machine loses power mid-write. Nothing here unpickles.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load_bytes
from safetensors.numpy import save as st_save_bytes

from sac_robot.policy_runtime import content_hash


class CorruptFileError(RuntimeError):
    """A file failed its checksum or could not be parsed; the message names the path."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def encode_tensors(tensors: dict[str, np.ndarray], metadata: dict) -> bytes:
    """safetensors bytes with JSON metadata and a checksum that covers both."""
    meta_json = json.dumps(metadata, sort_keys=True)
    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}  # keeps 0-d arrays 0-d
    digest = content_hash(arrays, meta_json)
    return st_save_bytes(arrays, metadata={"meta": meta_json, "sha256": digest})


def decode_tensors(data: bytes, source: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict]:
    """Parse and verify bytes made by encode_tensors; raises CorruptFileError naming the source."""
    try:
        tensors = st_load_bytes(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        raw_meta = header.get("__metadata__", {})
        meta_json = raw_meta["meta"]
        expected = raw_meta["sha256"]
        metadata = json.loads(meta_json)
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError) as err:  # truncated or foreign data
        raise CorruptFileError(f"{source}: unreadable tensor file ({type(err).__name__}: {err})") from None
    if content_hash(tensors, meta_json) != expected:
        raise CorruptFileError(f"{source}: checksum mismatch (file is corrupt)")
    return tensors, metadata


def save_tensors(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict) -> None:
    atomic_write_bytes(path, encode_tensors(tensors, metadata))


def load_tensors(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CorruptFileError(f"{path}: cannot read ({err})") from None
    return decode_tensors(data, str(path))
