# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Freeze a trained actor into one deployable file (format: docs/policy_format.md).

The normaliser's statistics are frozen into the file, so the deployed policy sees observations
exactly as the actor did at export time; sac_robot.policy_runtime runs it with numpy alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sac_robot.core.atomic_io import encode_tensors, save_tensors
from sac_robot.core.sac import SAC
from sac_robot.policy_runtime import FORMAT, FORMAT_VERSION


def policy_tensors_and_meta(agent: SAC, **info: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The actor's weights, frozen normaliser and layout metadata; ``info`` adds fields (env_id, joint_names…)."""
    tensors = dict(agent.actor_tensors())
    tensors["obs_mean"], tensors["obs_std"] = agent.normalizer.frozen()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "obs_dim": agent.obs_dim,
        "act_dim": agent.act_dim,
        "hidden_sizes": list(agent.cfg.hidden_sizes),
        "activation": agent.cfg.activation,
        "action_low": (tensors["action_bias"] - tensors["action_scale"]).tolist(),
        "action_high": (tensors["action_bias"] + tensors["action_scale"]).tolist(),
        "updates": agent.updates,
        **info,
    }
    return tensors, meta


def policy_bytes(agent: SAC, **info: Any) -> bytes:
    return encode_tensors(*policy_tensors_and_meta(agent, **info))


def export_policy(agent: SAC, path: str | Path, **info: Any) -> Path:
    tensors, meta = policy_tensors_and_meta(agent, **info)
    save_tensors(path, tensors, meta)
    return Path(path)
