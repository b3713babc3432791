# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Training configuration: one YAML file, validated before anything starts.

Every section forbids unknown keys, so a typo fails at start-up with the key's full dotted name
instead of silently training with a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SACConfig(_Section):
    """Soft Actor-Critic hyperparameters (Haarnoja et al. 2018, arXiv:1812.05905)."""

    hidden_sizes: list[int] = Field(default=[256, 256], min_length=1, description="hidden layer widths")
    activation: Literal["relu", "tanh", "elu", "silu"] = "relu"
    n_critics: int = Field(default=2, ge=1, le=64, description="critic ensemble size N")
    critic_subset: int | None = Field(
        default=None, ge=1, description="REDQ: size M of the random critic subset in the target (None = all N)"
    )
    critic_dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="DroQ: dropout rate in critics")
    critic_layernorm: bool = Field(default=False, description="DroQ: LayerNorm after each critic hidden layer")
    actor_lr: float = Field(default=3e-4, gt=0)
    critic_lr: float = Field(default=3e-4, gt=0)
    alpha_lr: float = Field(default=3e-4, gt=0)
    init_alpha: float = Field(default=1.0, gt=0)
    autotune_alpha: bool = True
    target_entropy: float | Literal["auto"] = Field(default="auto", description="'auto' means -|A|")
    gamma: float = Field(default=0.99, gt=0.0, le=1.0)
    tau: float = Field(default=0.005, gt=0.0, le=1.0, description="Polyak averaging rate of target critics")
    batch_size: int = Field(default=256, ge=1)
    utd: int = Field(default=1, ge=1, description="critic updates per environment step (update-to-data ratio)")
    actor_updates_per_step: int | None = Field(
        default=None, ge=1, description="actor/temperature updates per env step (None = utd, as in plain SAC)"
    )
    learning_starts: int = Field(default=5000, ge=0, description="random-action steps before learning")
    normalize_obs: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="matmul precision of updates; bfloat16 autocasts layers (weights, losses and Adam stay float32)",
    )
    torch_threads: int = Field(default=0, ge=0, description="intra-op threads for the learner (0 = torch default)")

    @model_validator(mode="after")
    def _check(self) -> SACConfig:
        if self.critic_subset is not None and self.critic_subset > self.n_critics:
            raise ValueError(f"critic_subset ({self.critic_subset}) must not exceed n_critics ({self.n_critics})")
        if self.actor_updates_per_step is not None and self.actor_updates_per_step > self.utd:
            raise ValueError("actor_updates_per_step must not exceed utd")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError("hidden_sizes: every width must be at least 1")
        return self


class ReplayConfig(_Section):
    capacity: int = Field(default=1_000_000, ge=1)
    persist: bool = Field(default=True, description="write the buffer to the run directory in chunks as it fills")
    chunk_size: int = Field(default=10_000, ge=1, description="transitions per persisted chunk")

    @model_validator(mode="after")
    def _check(self) -> ReplayConfig:
        if self.chunk_size > self.capacity:  # a chunk must be written before the ring overwrites its start
            raise ValueError(f"chunk_size ({self.chunk_size}) must not exceed capacity ({self.capacity})")
        return self


class EnvConfig(_Section):
    id: str = "Pendulum-v1"
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for gymnasium.make")
    max_episode_steps: int | None = Field(default=None, ge=1)


class TrainConfig(_Section):
    total_steps: int = Field(default=100_000, ge=1)
    seed: int = 0
    eval_interval: int = Field(default=5_000, ge=1, description="env steps between evaluations")
    eval_episodes: int = Field(default=5, ge=1)
    checkpoint_interval: int = Field(default=25_000, ge=1, description="env steps between checkpoints")
    keep_checkpoints: int = Field(default=3, ge=1)
    log_interval_s: float = Field(default=1.0, gt=0, description="seconds between progress-bar refreshes")
    target_return: float | None = Field(
        default=None, description="stop early once the mean evaluation return reaches this (None = run all steps)"
    )


class Config(_Section):
    """A whole training run."""

    env: EnvConfig = Field(default_factory=EnvConfig)
    sac: SACConfig = Field(default_factory=SACConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    robot: dict[str, Any] | None = Field(default=None, description="robot-side sections, validated by the robot layer")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {key}: {msg}" + (f" (got {e['input']!r})" if e["type"] != "extra_forbidden" else ""))
    return f"invalid configuration in {source}:\n" + "\n".join(lines)


def validate_config(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a mapping into a Config, raising ConfigError that names every bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {source}: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def package_share() -> Path:
    """The folder that holds config/, urdf/ and launch/: the source tree or the colcon share space."""
    source_root = Path(__file__).resolve().parents[2]
    if (source_root / "config").is_dir() and (source_root / "urdf").is_dir():
        return source_root
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("sac_robot"))
    except (ImportError, LookupError) as err:  # pragma: no cover - only on broken installs
        raise FileNotFoundError("cannot locate sac_robot's config/ and urdf/ folders") from err


def packaged_config_dir() -> Path:
    return package_share() / "config"


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path as given, or the name of a packaged config (``pendulum`` → config/pendulum.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = packaged_config_dir() / f"{Path(str(name_or_path)).stem}.yaml"
    if path.suffix in ("", ".yaml", ".yml") and candidate.is_file():
        return candidate
    raise ConfigError(f"config not found: {name_or_path} (neither a file nor a packaged config name)")


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load, apply dotted overrides (``{'train.seed': 3}``) and validate a YAML config."""
    path = resolve_config_path(name_or_path)
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"invalid YAML in {path}: {err}") from None
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return validate_config(data, str(path))
