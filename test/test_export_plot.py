# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot export` and `sac-robot plot` on a tiny in-process Pendulum run.

The exported policy acts like the training actor in a process where torch and sac_robot.core cannot be
imported; export errors name the path; a robot config exports the pipeline's layout; plotted data is
progress.csv's, with runs that differ only by seed grouped into one curve.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sac_robot.cli.main import main as cli_main
from sac_robot.core.checkpoint import CheckpointManager
from sac_robot.core.config import Config, load_config
from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.training.export_cli import ExportError, export_run
from sac_robot.training.plot import plot_runs
from sac_robot.training.run_log import read_progress
from sac_robot.training.trainer import Trainer

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[1]
RUNTIME_PATH = REPO / "sac_robot" / "policy_runtime.py"

# Blocks torch and sac_robot (core included) and loads policy_runtime.py by its path: the robot-computer case.
NUMPY_ONLY = r"""
import importlib.util, json, sys
import numpy as np

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "sac_robot"):
            raise ImportError(f"blocked import of {name}")
        return None

sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("policy_runtime", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
policy = mod.FrozenPolicy.load(sys.argv[2])
obs = np.load(sys.argv[3])
np.save(sys.argv[4], np.stack([policy.act(o) for o in obs]))
print(json.dumps({"torch": "torch" in sys.modules, "core": any(m.startswith("sac_robot") for m in sys.modules)}))
"""


def tiny_pendulum(seed: int = 0) -> Config:
    return Config.model_validate(
        {
            "env": {"id": "Pendulum-v1"},
            "sac": {
                "hidden_sizes": [16],
                "batch_size": 32,
                "learning_starts": 200,
                "device": "cpu",
                "torch_threads": 1,
            },
            "replay": {"capacity": 2000, "chunk_size": 200, "persist": False},
            "train": {
                "total_steps": 600,
                "seed": seed,
                "eval_interval": 300,
                "eval_episodes": 1,
                "checkpoint_interval": 400,
            },
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """One tiny run: (run dir, observations, the training actor's deterministic actions on them)."""
    run_dir = tmp_path_factory.mktemp("runs") / "pendulum_seed0"
    trainer = Trainer(tiny_pendulum(), run_dir, progress=False)
    trainer.run()
    obs = np.random.default_rng(0).uniform(-1.5, 1.5, size=(32, 3)).astype(np.float32)
    obs[:, 2] *= 6.0  # angular velocity spans [-8, 8]
    actions = np.stack([trainer.agent.act(o, deterministic=True) for o in obs])
    return run_dir, obs, actions


def test_export_acts_like_training_actor_without_torch(trained, tmp_path: Path) -> None:
    run_dir, obs, expected = trained
    out = tmp_path / "deploy" / "policy.safetensors"
    assert cli_main(["export", "--run-dir", str(run_dir), "--out", str(out)]) == 0
    meta = FrozenPolicy.load(out).meta
    assert meta["env_id"] == "Pendulum-v1"
    assert meta["checkpoint_step"] == 600 and meta["checkpoint"].endswith("ckpt_000000000600.safetensors")
    assert meta["config"]["train"]["total_steps"] == 600
    assert "joint_names" not in meta  # no robot section: nothing robot-side to claim

    np.save(tmp_path / "obs.npy", obs)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NUMPY_ONLY,
            str(RUNTIME_PATH),
            str(out),
            str(tmp_path / "obs.npy"),
            str(tmp_path / "a.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"torch": False, "core": False}
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), expected, atol=1e-5, rtol=0)


def test_export_older_checkpoint_and_errors(trained, tmp_path: Path, capsys) -> None:
    run_dir, _, _ = trained
    older = export_run(run_dir, tmp_path / "p400.safetensors", checkpoint=400)
    assert older["checkpoint_step"] == 400
    assert FrozenPolicy.load(tmp_path / "p400.safetensors").meta["checkpoint_step"] == 400

    missing = tmp_path / "no_such_run"
    assert cli_main(["export", "--run-dir", str(missing), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert str(missing) in capsys.readouterr().err

    with pytest.raises(FileNotFoundError, match="available steps: \\[400, 600\\]"):
        export_run(run_dir, tmp_path / "x.safetensors", checkpoint=500)

    # A corrupt newest checkpoint: an explicit request names it; the default falls back to the previous one.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    newest = copy / "checkpoints" / "ckpt_000000000600.safetensors"
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=str(newest)):
        export_run(copy, tmp_path / "x.safetensors", checkpoint=600)
    assert export_run(copy, tmp_path / "fallback.safetensors")["checkpoint_step"] == 400

    for p in (copy / "checkpoints").iterdir():
        p.unlink()
    with pytest.raises(FileNotFoundError, match=str(copy / "checkpoints")):
        export_run(copy, tmp_path / "x.safetensors")


def test_export_robot_config_carries_pipeline_layout(tmp_path: Path) -> None:
    """A run with a robot section exports what the deploy node checks (the pipeline's, not the env's)."""
    from sac_robot.core.sac import SAC
    from sac_robot.robot.deploy_check import check_compatibility
    from sac_robot.robot.pipeline import build_pipeline

    cfg = load_config("quadruped", {"sac.hidden_sizes": [16], "sac.device": "cpu"})
    run_dir = tmp_path / "quad"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    pipe = build_pipeline(cfg.robot)
    ones = np.ones(pipe.act_dim)
    agent = SAC(pipe.obs_dim, pipe.act_dim, -ones, ones, cfg.sac, seed=1)
    CheckpointManager(run_dir).save(1234, *agent.state_dict())
    result = export_run(run_dir, tmp_path / "quad.safetensors")
    assert result["source"] == "robot" and result["checkpoint_step"] == 1234
    policy = FrozenPolicy.load(tmp_path / "quad.safetensors")
    meta = policy.meta
    assert meta["joint_names"] == pipe.description.joint_names
    assert meta["robot"] == "quadruped" and meta["control_rate_hz"] == 20.0
    assert meta["obs_layout"][0] == ["joint_position", 0, 12]
    assert meta["action_mode"] == "position" and meta["action_scale"] == 0.35
    assert check_compatibility({**meta}, pipe) == []
    obs = np.zeros(pipe.obs_dim, dtype=np.float32)
    np.testing.assert_allclose(policy.act(obs), agent.act(obs, deterministic=True), atol=1e-5)


def _write_variant(src: Path, dst: Path, config_edit, return_shift: float) -> None:
    """A copy of a run with its config edited and its evaluation returns shifted (a cheap second run)."""
    dst.mkdir()
    data = yaml.safe_load((src / "config.yaml").read_text(encoding="utf-8"))
    config_edit(data)
    (dst / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    lines = (src / "progress.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    col = header.index("eval_return_mean")
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        cells[col] = f"{float(cells[col]) + return_shift:.6g}"
        rows.append(",".join(cells))
    (dst / "progress.csv").write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")


def test_plot_two_runs_and_seed_groups(trained, tmp_path: Path) -> None:
    run_a, _, _ = trained
    run_b = tmp_path / "pendulum_lr"  # another config: a line of its own
    _write_variant(run_a, run_b, lambda d: d["sac"].update(actor_lr=1e-4), -100.0)
    out = tmp_path / "curves.png"
    data = plot_runs([run_a, run_b], out, labels=["a", "b"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert list(data) == ["a", "b"]
    for label, run in (("a", run_a), ("b", run_b)):
        rows = read_progress(run)
        np.testing.assert_array_equal(data[label]["env_steps"], [r["env_steps"] for r in rows])
        np.testing.assert_allclose(data[label]["eval_return_mean"], [r["eval_return_mean"] for r in rows])
        np.testing.assert_allclose(data[label]["eval_len_mean"], [r["eval_len_mean"] for r in rows])
    assert [r["env_steps"] for r in read_progress(run_a)] == [300.0, 600.0]

    run_c = tmp_path / "pendulum_seed7"  # same config, another seed: grouped with run_a
    _write_variant(run_a, run_c, lambda d: d["train"].update(seed=7), 50.0)
    out2 = tmp_path / "grouped.png"
    assert cli_main(["plot", str(run_a), str(run_c), str(run_b), "--out", str(out2)]) == 0
    data = plot_runs([run_a, run_c, run_b], out2)
    assert len(data) == 2
    group = next(d for d in data.values() if "runs" in d)
    ret_a = np.array([r["eval_return_mean"] for r in read_progress(run_a)])
    ret_c = np.array([r["eval_return_mean"] for r in read_progress(run_c)])
    np.testing.assert_allclose(group["eval_return_mean"], (ret_a + ret_c) / 2)
    np.testing.assert_allclose(group["return_low"], np.minimum(ret_a, ret_c))
    np.testing.assert_allclose(group["return_high"], np.maximum(ret_a, ret_c))
    with pytest.raises(ValueError, match="3 labels for 2 curves"):
        plot_runs([run_a, run_c, run_b], out2, labels=["x", "y", "z"])
