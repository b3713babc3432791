# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Run a frozen sac_robot policy with numpy alone.

This module imports nothing but the standard library and numpy, so it can be copied onto a small
robot computer without torch or the rest of sac_robot. The file format is documented in
docs/policy_format.md: a safetensors file whose ``__metadata__`` holds ``meta`` (JSON) and ``sha256``
(content hash over every tensor and the metadata). Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "sac_robot.policy"
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # must match sac_robot.core.networks
FORMAT_VERSION = 1
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


class PolicyFormatError(ValueError):
    """The file is not a valid sac_robot policy; the message says why and names the file."""


def read_safetensors(data: bytes, source: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into numpy arrays and the string metadata, without the safetensors package."""
    try:
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_len])
        body = memoryview(data)[8 + header_len :]
        metadata = header.pop("__metadata__", {}) or {}
        tensors = {}
        for name, info in header.items():
            begin, end = info["data_offsets"]
            if end > len(body) or begin > end:
                raise ValueError(f"tensor {name!r} runs past the end of the file")
            arr = np.frombuffer(body[begin:end], dtype=_DTYPES[info["dtype"]])
            tensors[name] = arr.reshape(info["shape"]).copy()
    except (struct.error, ValueError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise PolicyFormatError(f"{source}: not a readable safetensors file ({err})") from None
    return tensors, metadata


def content_hash(tensors: dict[str, np.ndarray], meta_json: str) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes, in name order) and the metadata JSON."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return hashlib.sha256((h.hexdigest() + meta_json).encode()).hexdigest()


def _check_shapes(tensors: dict[str, np.ndarray], obs_dim: int, act_dim: int, hidden: list[int]) -> None:
    """Every tensor has the shape the metadata implies; the message names the first that does not."""
    sizes = [obs_dim, *hidden]
    expected = {"obs_mean": (obs_dim,), "obs_std": (obs_dim,), "action_scale": (act_dim,), "action_bias": (act_dim,)}
    for i in range(len(hidden)):
        expected[f"trunk.{2 * i}.weight"] = (sizes[i + 1], sizes[i])
        expected[f"trunk.{2 * i}.bias"] = (sizes[i + 1],)
    expected["head.weight"] = (2 * act_dim, sizes[-1])
    expected["head.bias"] = (2 * act_dim,)
    for name, shape in expected.items():
        if name not in tensors:
            raise PolicyFormatError(f"policy tensor {name!r} is missing")
        if tuple(tensors[name].shape) != shape:
            raise PolicyFormatError(f"policy tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {shape}")


class FrozenPolicy:
    """Deterministic forward pass of an exported actor: normalise, MLP, tanh, scale."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any], sha256: str) -> None:
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise PolicyFormatError(f"unsupported policy format {meta.get('format')!r} v{meta.get('format_version')}")
        self.meta = meta
        self.sha256 = sha256
        self.obs_dim = int(meta["obs_dim"])
        self.act_dim = int(meta["act_dim"])
        self.activation = _ACTIVATIONS[meta["activation"]]
        n_hidden = len(meta["hidden_sizes"])
        _check_shapes(tensors, self.obs_dim, self.act_dim, [int(h) for h in meta["hidden_sizes"]])
        # Weights transposed once here so each control step is plain x @ W + b.
        self.layers = [
            (tensors[f"trunk.{2 * i}.weight"].T.astype(np.float32), tensors[f"trunk.{2 * i}.bias"].astype(np.float32))
            for i in range(n_hidden)
        ]
        self.head_w = tensors["head.weight"].T.astype(np.float32)  # columns: [mean | log_std]
        self.head_b = tensors["head.bias"].astype(np.float32)
        self.obs_mean = tensors["obs_mean"].astype(np.float32)
        self.obs_std = tensors["obs_std"].astype(np.float32)
        self.action_scale = tensors["action_scale"].astype(np.float32)
        self.action_bias = tensors["action_bias"].astype(np.float32)
        for name, arr in tensors.items():
            if not np.all(np.isfinite(arr)):
                raise PolicyFormatError(f"policy tensor {name!r} contains NaN or inf")

    @classmethod
    def load(cls, path: str | Path) -> FrozenPolicy:
        path = Path(path)
        return cls.from_bytes(path.read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> FrozenPolicy:
        tensors, raw = read_safetensors(data, source)
        if "meta" not in raw or "sha256" not in raw:
            raise PolicyFormatError(f"{source}: no sac_robot metadata (meta, sha256)")
        if content_hash(tensors, raw["meta"]) != raw["sha256"]:
            raise PolicyFormatError(f"{source}: content hash mismatch (file corrupt or altered)")
        try:
            return cls(tensors, json.loads(raw["meta"]), raw["sha256"])
        except (KeyError, json.JSONDecodeError) as err:
            raise PolicyFormatError(f"{source}: missing field {err}") from None

    def _head(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        if x.shape != (self.obs_dim,):
            raise ValueError(f"observation has shape {x.shape}, the policy expects ({self.obs_dim},)")
        x = np.clip((x - self.obs_mean) / self.obs_std, -10.0, 10.0)
        for w, b in self.layers:
            x = self.activation(x @ w + b)
        return x @ self.head_w + self.head_b

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action (float64, in the environment's action bounds) for one raw observation."""
        mean = self._head(obs)[: self.act_dim]
        return (np.tanh(mean) * self.action_scale + self.action_bias).astype(np.float64)

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Exploration action drawn from the squashed Gaussian, as the training actor samples it."""
        out = self._head(obs)
        mean, log_std = out[: self.act_dim], out[self.act_dim :]
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (np.tanh(log_std) + 1.0)
        u = mean + np.exp(log_std) * rng.standard_normal(self.act_dim).astype(np.float32)
        return (np.tanh(u) * self.action_scale + self.action_bias).astype(np.float64)


if __name__ == "__main__":  # python policy_runtime.py policy.safetensors: print what the file holds
    import sys

    pol = FrozenPolicy.load(sys.argv[1])
    print(json.dumps({k: v for k, v in pol.meta.items() if k != "config"}, indent=2))
    print("sha256", pol.sha256)
