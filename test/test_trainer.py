# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot train` end to end on Pendulum-v1: resuming is exact, the run directory has its layout, Ctrl-C is safe.

Pendulum episodes are 200 steps, so with checkpoint_interval 400 the interval checkpoints fall on
the episode boundaries at steps 400 and 800.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sac_robot.core.atomic_io import load_tensors
from sac_robot.core.config import Config, validate_config
from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.training.run_log import PROGRESS_COLUMNS
from sac_robot.training.trainer import Trainer

pytestmark = pytest.mark.timeout(240)

COLUMNS = [
    "time_s",
    "env_steps",
    "updates",
    "episodes",
    "train_return_mean",
    "eval_return_mean",
    "eval_return_std",
    "eval_len_mean",
    "alpha",
    "q_loss",
    "pi_loss",
    "updates_per_s",
]
# Everything in a progress row that must not depend on whether the run was interrupted.
DETERMINISTIC_COLUMNS = [c for c in COLUMNS if c not in ("time_s", "updates_per_s")]


def tiny_config(**train) -> Config:
    return Config.model_validate(
        {
            "env": {"id": "Pendulum-v1"},
            "sac": {"hidden_sizes": [32, 32], "batch_size": 64, "learning_starts": 200, "device": "cpu"},
            "replay": {"capacity": 5000, "chunk_size": 250},
            "train": {
                "total_steps": 1000,
                "seed": 3,
                "checkpoint_interval": 400,
                "eval_interval": 500,
                "eval_episodes": 1,
                **train,
            },
        }
    )


def read_rows(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run_dir / "progress.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def ckpt_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (run_dir / "checkpoints").glob("ckpt_*.safetensors"))


def params(trainer: Trainer) -> dict[str, torch.Tensor]:
    a = trainer.agent
    out = {}
    for prefix, module in (("actor", a.actor), ("critic", a.critic), ("target", a.critic_target)):
        out.update({f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
    out["log_alpha"] = a.log_alpha.detach().clone()
    return out


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny networks train several times faster on one thread than on two busy shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run A uninterrupted to 1000 steps; run B to 600, then resumed to 1000."""
    root = tmp_path_factory.mktemp("runs")
    a_dir, b_dir = root / "a", root / "b"
    a = Trainer(tiny_config(), a_dir, progress=False)
    a.run()

    b1 = Trainer(tiny_config(total_steps=600), b_dir, progress=False)
    b1.run()
    b_ckpts_at_stop = ckpt_steps(b_dir)
    b_meta_at_stop = load_tensors(b_dir / "checkpoints" / "ckpt_000000000600.safetensors")[1]

    b2 = Trainer(None, b_dir, resume=True, total_steps=1000, progress=False)
    resumed_at = (b2.step, b2.episodes, b2.buffer.total, b2.agent.updates)
    b2.run()
    return {
        "a": a,
        "b": b2,
        "a_dir": a_dir,
        "b_dir": b_dir,
        "b_ckpts_at_stop": b_ckpts_at_stop,
        "b_meta_at_stop": b_meta_at_stop,
        "resumed_at": resumed_at,
    }


def test_checkpoints_fall_on_episode_boundaries(runs):
    assert runs["b_ckpts_at_stop"] == [400, 600]  # interval checkpoint at 400, final one at 600
    t = runs["b_meta_at_stop"]["trainer"]
    assert t["step"] == 600 and t["episodes"] == 3 and t["at_episode_boundary"] is True
    assert t["buffer_total"] == 600
    # learning starts at step 200: one update per step from then on
    assert runs["resumed_at"] == (600, 3, 600, 401)
    assert ckpt_steps(runs["a_dir"]) == [400, 800, 1000]
    assert ckpt_steps(runs["b_dir"]) == [600, 800, 1000]
    a_meta = load_tensors(runs["a_dir"] / "checkpoints" / "ckpt_000000000400.safetensors")[1]
    assert a_meta["trainer"]["step"] == 400 and a_meta["trainer"]["episodes"] == 2


def test_resumed_run_equals_uninterrupted_run(runs):
    a, b = runs["a"], runs["b"]
    assert a.step == b.step == 1000
    assert a.episodes == b.episodes == 5
    assert a.agent.updates == b.agent.updates == 801
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), f"{k} differs after resume"
    np.testing.assert_array_equal(a.agent.normalizer.mean, b.agent.normalizer.mean)
    np.testing.assert_array_equal(a.agent.normalizer.var, b.agent.normalizer.var)
    for name, arr in a.buffer.data.items():
        np.testing.assert_array_equal(arr, b.buffer.data[name], err_msg=name)
    assert list(a.train_returns) == list(b.train_returns)

    _, rows_a = read_rows(runs["a_dir"])
    _, rows_b = read_rows(runs["b_dir"])
    assert [r["env_steps"] for r in rows_a] == ["500", "1000"]
    assert [r["env_steps"] for r in rows_b] == ["500", "600", "1000"]  # B also evaluated when it stopped at 600
    by_step_b = {r["env_steps"]: r for r in rows_b}
    for row in rows_a:
        other = by_step_b[row["env_steps"]]
        for col in DETERMINISTIC_COLUMNS:
            assert row[col] == other[col], f"{col} at step {row['env_steps']}: {row[col]} != {other[col]}"

    ta, _ = load_tensors(runs["a_dir"] / "policy.safetensors")
    tb, _ = load_tensors(runs["b_dir"] / "policy.safetensors")
    assert ta.keys() == tb.keys()
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)


def test_run_dir_layout(runs):
    run_dir, trainer = runs["a_dir"], runs["a"]
    saved = validate_config(yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")))
    assert saved.model_dump() == tiny_config().model_dump()

    header, rows = read_rows(run_dir)
    assert header == COLUMNS
    assert PROGRESS_COLUMNS == COLUMNS
    assert len(rows) == 2
    last = rows[-1]
    assert int(last["env_steps"]) == 1000 and int(last["updates"]) == 801
    assert float(last["eval_len_mean"]) == 200.0
    for col in ("time_s", "train_return_mean", "eval_return_mean", "alpha", "q_loss", "pi_loss", "updates_per_s"):
        assert np.isfinite(float(last[col])), col
    assert float(last["eval_return_std"]) == 0.0  # one evaluation episode
    assert float(last["updates_per_s"]) > 0 and float(last["time_s"]) > 0

    events = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert events and all(p.stat().st_size > 0 for p in events)

    policy = FrozenPolicy.load(run_dir / "policy.safetensors")
    assert policy.meta["env_id"] == "Pendulum-v1" and policy.obs_dim == 3 and policy.act_dim == 1
    for obs in np.random.default_rng(0).uniform(-1, 1, size=(10, 3)):
        np.testing.assert_allclose(policy.act(obs), trainer.agent.act(obs, deterministic=True), rtol=0, atol=1e-5)


def test_evaluation_on_an_episode_end_counts_that_episode(runs, tmp_path):
    """At env_steps 1000 five 200-step Pendulum episodes have ended, the fifth on that very step.

    The row logged there, and the checkpoint written when target_return stops a run on an episode's
    last step, must count it (else a resumed run re-plays that episode's reset seed).
    """
    _, rows = read_rows(runs["a_dir"])
    last = rows[-1]
    assert int(last["env_steps"]) == 1000
    assert int(last["episodes"]) == 5
    assert float(last["train_return_mean"]) == pytest.approx(float(np.mean(runs["a"].train_returns)), rel=1e-5)

    run_dir = tmp_path / "stopped"
    stopped = Trainer(tiny_config(eval_interval=200, target_return=-1e9), run_dir, progress=False)
    stopped.run()  # reaches the target at the first evaluation, step 200 = end of episode 1
    assert stopped.step == 200
    meta = load_tensors(run_dir / "checkpoints" / "ckpt_000000000200.safetensors")[1]["trainer"]
    assert meta["at_episode_boundary"] is True
    assert meta["episodes"] == 1 and len(meta["train_returns"]) == 1


def test_new_run_in_a_dir_holding_one_fails(runs):
    run_dir = runs["a_dir"]
    before = (run_dir / "config.yaml").read_bytes()
    rows_before = read_rows(run_dir)[1]
    with pytest.raises(FileExistsError, match="resume"):
        Trainer(tiny_config(seed=99), run_dir, progress=False)
    assert (run_dir / "config.yaml").read_bytes() == before
    assert read_rows(run_dir)[1] == rows_before


def test_new_run_in_a_dir_whose_run_crashed_before_its_first_checkpoint_fails(tmp_path):
    """A run that died before writing a checkpoint still left config.yaml, progress rows and replay chunks.

    Starting a new run there would append the new run's rows to the old progress.csv (and TensorBoard
    events) and overwrite its config, so it must be refused like any other existing run.
    """
    run_dir = tmp_path / "run"
    first = Trainer(tiny_config(total_steps=1000, eval_interval=250, checkpoint_interval=1000), run_dir, progress=False)
    real_step, calls = first.env.step, [0]

    def crashing_step(action):
        calls[0] += 1
        if calls[0] > 300:
            raise RuntimeError("simulated crash")
        return real_step(action)

    first.env.step = crashing_step
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.run()
    assert not list(run_dir.glob("checkpoints/*"))
    assert len(read_rows(run_dir)[1]) == 1  # the evaluation at step 250
    config_before = (run_dir / "config.yaml").read_bytes()

    with pytest.raises(FileExistsError):
        Trainer(tiny_config(seed=42), run_dir, progress=False)
    assert (run_dir / "config.yaml").read_bytes() == config_before


def test_keyboard_interrupt_leaves_a_checkpoint_to_resume_from(tmp_path):
    run_dir = tmp_path / "run"
    trainer = Trainer(tiny_config(total_steps=600), run_dir, progress=False)
    real_step, calls = trainer.env.step, [0]

    def interrupted_step(action):
        calls[0] += 1
        if calls[0] > 350:  # Ctrl-C in the middle of the second episode, after learning started
            raise KeyboardInterrupt
        return real_step(action)

    trainer.env.step = interrupted_step
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert ckpt_steps(run_dir) == [350]
    _, meta = load_tensors(run_dir / "checkpoints" / "ckpt_000000000350.safetensors")
    assert meta["trainer"]["step"] == 350 and meta["trainer"]["at_episode_boundary"] is False
    assert meta["trainer"]["buffer_total"] == 350
    chunks = list((run_dir / "replay").glob("chunk_*.safetensors"))
    assert sum(int(p.stem.split("_")[2]) for p in chunks) == 350  # the buffer reached the disk

    resumed = Trainer(None, run_dir, resume=True, progress=False)
    assert resumed.step == 350 and resumed.episodes == 1
    assert resumed.buffer.total == 350 and resumed.agent.updates == 151
    for name, arr in trainer.buffer.data.items():
        np.testing.assert_array_equal(resumed.buffer.data[name][:350], arr[:350], err_msg=name)
    for k, v in params(trainer).items():
        assert torch.equal(v, params(resumed)[k]), k
    summary = resumed.run()
    assert resumed.step == 600
    assert np.isfinite(summary["return_mean"])
    assert (run_dir / "policy.safetensors").is_file()
    # the interrupted episode is restarted, so the next boundary past the interval (400) is 350 + 200
    assert ckpt_steps(run_dir) == [350, 550, 600]
    header, rows = read_rows(run_dir)
    assert header == COLUMNS
    assert [r["env_steps"] for r in rows] == ["500", "600"]


def test_resume_without_a_run_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run"):
        Trainer(None, tmp_path / "nothing", resume=True, progress=False)


def test_cli_prints_the_final_evaluation(tmp_path, capsys):
    from sac_robot.cli.main import main

    cfg_path = tmp_path / "tiny.yaml"
    data = json.loads(json.dumps(tiny_config(total_steps=220, eval_interval=220).model_dump(mode="json")))
    data["sac"]["learning_starts"] = 210
    data["sac"]["hidden_sizes"] = [8]
    cfg_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--run-dir", str(run_dir), "--quiet", "--seed", "5"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["run_dir"] == str(run_dir)
    assert out["final_eval"]["episodes"] == 1
    assert validate_config(yaml.safe_load((run_dir / "config.yaml").read_text())).train.seed == 5
    assert main(["train", "--config", str(cfg_path), "--run-dir", str(run_dir), "--quiet"]) == 2  # exists


def test_in_process_legged_training_learns_from_what_the_safety_layer_let_through(tmp_path):
    """quadruped_hw in process: the strict safety layer (rate limits, low-pass filter) changes random actions, and
    the replay stores the executed actions, as the collector does on the robot."""
    from sac_robot.core.config import load_config

    cfg = load_config("quadruped_hw", {"train.total_steps": 60, "sac.learning_starts": 1000, "sac.device": "cpu"})
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    try:
        trainer.run()
        d = trainer.buffer.data
        actions, ended = d["action"][:60], (d["terminated"][:60] + d["truncated"][:60]) > 0
        assert len(trainer.buffer) == 60
        # uniform random actions jump across [-1, 1]; rate-limited, filtered ones move far less per step
        within = ~ended[:-1]  # a new episode starts from the measured pose
        steps = np.abs(np.diff(actions, axis=0))[within]
        assert within.sum() >= 30 and steps.max() <= 0.2 * 21.0 * 0.05 / 0.35 + 1e-4  # fraction · velocity · dt / scale
    finally:
        trainer.env.close()
        trainer.eval_env.close()


def test_resuming_a_run_whose_config_repeats_robot_keys_names_the_file_and_the_keys(tmp_path):
    """A run started before configs named their robot once: the error says which saved file and which keys."""
    from sac_robot.core.config import ConfigError, load_config

    data = load_config("quadruped").model_dump(mode="json")
    data["env"]["kwargs"].update(robot="quadruped", action_scale=0.35)
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"old_run/config\.yaml.*\['action_scale', 'robot'\]"):
        Trainer(None, run_dir, resume=True, progress=False)
