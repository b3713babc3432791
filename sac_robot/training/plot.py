# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot plot`: learning curves from run directories (progress.csv), as one PNG.

Panel 1: evaluation return against environment steps; panel 2: evaluation episode length. Runs whose
config.yaml differs only in ``train.seed`` are one curve: the mean over seeds with a min–max band (or
±1 standard deviation); any other run is a line of its own. Works on in-process and ROS learner runs
alike (both write progress.csv through sac_robot.training.run_log).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sac_robot.core.config import ConfigError
from sac_robot.training.run_log import read_progress

BANDS = ("minmax", "std")


def config_key(run_dir: Path) -> str:
    """What identifies an experiment: config.yaml without train.seed (the run's path if it has no config)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return f"<no config> {run_dir.resolve()}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({err})") from None
    if isinstance(data.get("train"), dict):
        data["train"] = {k: v for k, v in data["train"].items() if k != "seed"}
    return json.dumps(data, sort_keys=True, default=str)


def group_runs(run_dirs: list[Path]) -> list[list[Path]]:
    """Runs grouped by config_key, in the order their first member was given."""
    groups: dict[str, list[Path]] = {}
    for run in run_dirs:
        groups.setdefault(config_key(run), []).append(run)
    return list(groups.values())


def read_curve(run_dir: Path) -> dict[str, np.ndarray]:
    path = run_dir / "progress.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no progress.csv ({path} is missing)")
    rows = read_progress(run_dir)
    if not rows:
        raise ConfigError(f"{path}: no evaluation rows yet")
    col = lambda k: np.array([r.get(k, np.nan) for r in rows], dtype=np.float64)
    return {
        "env_steps": col("env_steps"),
        "eval_return_mean": col("eval_return_mean"),
        "eval_len_mean": col("eval_len_mean"),
    }


def _seed_of(run_dir: Path) -> str:
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        return str(data["train"]["seed"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "?"


def combine(curves: list[dict[str, np.ndarray]], band: str = "minmax") -> dict[str, np.ndarray]:
    """Mean and band over seeds; curves evaluated at other steps are interpolated onto the common range."""
    steps = [c["env_steps"] for c in curves]
    if all(len(s) == len(steps[0]) and np.array_equal(s, steps[0]) for s in steps):
        grid = steps[0]
        at = lambda c, k: c[k]
    else:  # e.g. ROS learner rows land on slightly different step counts per seed
        lo, hi = max(s.min() for s in steps), min(s.max() for s in steps)
        grid = np.unique(np.concatenate(steps))
        grid = grid[(grid >= lo) & (grid <= hi)]
        at = lambda c, k: np.interp(grid, c["env_steps"], c[k])
    out: dict[str, np.ndarray] = {"env_steps": grid}
    for key, short in (("eval_return_mean", "return"), ("eval_len_mean", "len")):
        stack = np.stack([at(c, key) for c in curves])
        mean = np.nanmean(stack, axis=0)
        if band == "std":
            std = np.nanstd(stack, axis=0)
            low, high = mean - std, mean + std
        else:
            low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        out[key], out[f"{short}_low"], out[f"{short}_high"] = mean, low, high
    return out


def _default_label(group: list[Path]) -> str:
    names = [p.resolve().name for p in group]
    if len(group) == 1:
        return names[0]
    common = os.path.commonprefix(names).rstrip("_-.")
    if common.endswith(("_seed", "-seed")):
        common = common[:-5]
    if len(common) < 3:  # nothing meaningful in common: name the first run
        common = f"{names[0]} +{len(names) - 1}"
    seeds = ",".join(_seed_of(p) for p in group)
    return f"{common} (seeds {seeds})"


def plot_runs(
    run_dirs: list[str | Path],
    out: str | Path,
    labels: list[str] | None = None,
    band: str = "minmax",
    title: str | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Write the figure to ``out``; return, per curve label, the arrays plotted.

    Each value holds ``env_steps``, ``eval_return_mean``, ``eval_len_mean`` (means over seeds for a group)
    and, for groups, ``return_low``/``return_high``/``len_low``/``len_high`` (the band) and ``runs``.
    """
    if band not in BANDS:
        raise ConfigError(f"--band: expected one of {list(BANDS)}, got {band!r}")
    runs = [Path(r) for r in run_dirs]
    if not runs:
        raise ConfigError("plot: no run directories given")
    for run in runs:
        if not run.is_dir():
            raise FileNotFoundError(f"{run}: not a run directory")
    groups = group_runs(runs)
    if labels is not None and len(labels) != len(groups):
        sizes = ", ".join(str(len(g)) for g in groups)
        raise ConfigError(
            f"--labels: {len(labels)} labels for {len(groups)} curves (runs that differ only in train.seed share "
            f"one curve; group sizes {sizes})"
        )
    names = labels or [_default_label(g) for g in groups]
    data: dict[str, dict[str, Any]] = {}
    for name, group in zip(names, groups):
        label, k = name, 2
        while label in data:  # two different configs from same-named folders
            label, k = f"{name} [{k}]", k + 1
        curves = [read_curve(run) for run in group]
        entry: dict[str, Any] = curves[0] if len(curves) == 1 else combine(curves, band)
        if len(curves) > 1:
            entry["runs"] = np.array([str(r) for r in group])
        data[label] = entry

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_ret, ax_len = fig.subplots(1, 2)
    for i, (label, d) in enumerate(data.items()):
        color = f"C{i % 10}"
        x = d["env_steps"]
        ax_ret.plot(x, d["eval_return_mean"], color=color, label=label, marker="." if len(x) < 30 else None)
        ax_len.plot(x, d["eval_len_mean"], color=color, label=label, marker="." if len(x) < 30 else None)
        if "return_low" in d:
            ax_ret.fill_between(x, d["return_low"], d["return_high"], color=color, alpha=0.2, linewidth=0)
            ax_len.fill_between(x, d["len_low"], d["len_high"], color=color, alpha=0.2, linewidth=0)
    band_text = "min–max over seeds" if band == "minmax" else "±1 std over seeds"
    ax_ret.set(xlabel="environment steps", ylabel="evaluation return", title="evaluation return")
    ax_len.set(xlabel="environment steps", ylabel="evaluation episode length", title="episode length")
    for ax in (ax_ret, ax_len):
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 4))
    ax_ret.legend(fontsize="small", title=band_text if any("return_low" in d for d in data.values()) else None)
    if title:
        fig.suptitle(title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return data


def plot_main(args: argparse.Namespace) -> int:
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    data = plot_runs(args.run_dirs, args.out, labels, args.band, args.title)
    summary = {
        label: {
            "points": len(d["env_steps"]),
            "last_step": float(d["env_steps"][-1]),
            "last_eval_return": float(d["eval_return_mean"][-1]),
            "runs": [str(r) for r in d["runs"]] if "runs" in d else None,
        }
        for label, d in data.items()
    }
    print(json.dumps({"out": str(args.out), "curves": summary}))
    return 0
