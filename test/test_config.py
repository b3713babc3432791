# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A bad configuration fails at start-up, naming the key, before a run directory is created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sac_robot.cli.main import main
from sac_robot.core.config import Config, ConfigError, load_config, resolve_config_path, validate_config
from sac_robot.core.replay import ChunkStore, ReplayBuffer

pytestmark = pytest.mark.jazzy  # also runs in the Jazzy leg, with Ubuntu 24.04's libraries

REPO = Path(__file__).resolve().parents[1]


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(data, "test.yaml")
    return str(info.value)


def test_defaults_validate():
    cfg = validate_config({})
    assert isinstance(cfg, Config)
    assert cfg.sac.n_critics == 2 and cfg.sac.critic_subset is None and cfg.env.id == "Pendulum-v1"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"sac": {"batchsize": 64}}, "sac.batchsize"),
        ({"train": {"total_step": 10}}, "train.total_step"),
        ({"replay": {"capacity": 10, "chunksize": 5}}, "replay.chunksize"),
        ({"trian": {}}, "trian"),
    ],
)
def test_unknown_key_is_named(data, key):
    msg = error_of(data)
    assert key in msg
    assert "unknown key" in msg
    assert "test.yaml" in msg


def test_every_bad_key_is_reported_at_once():
    msg = error_of({"sac": {"batchsize": 64, "tau": 2}, "train": {"seeed": 1}})
    assert "sac.batchsize" in msg and "sac.tau" in msg and "train.seeed" in msg


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"sac": {"batch_size": "big"}}, "sac.batch_size"),
        ({"sac": {"hidden_sizes": "wide"}}, "sac.hidden_sizes"),
        ({"sac": {"activation": "sigmoid"}}, "sac.activation"),
        ({"sac": {"device": "tpu"}}, "sac.device"),
        ({"train": {"total_steps": "lots"}}, "train.total_steps"),
        ({"sac": {"normalize_obs": "maybe"}}, "sac.normalize_obs"),
    ],
)
def test_wrong_type_names_the_key(data, key):
    msg = error_of(data)
    assert key in msg
    assert "unknown key" not in msg


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("sac", "tau", 2),
        ("sac", "tau", 0),
        ("sac", "gamma", 0),
        ("sac", "gamma", 1.5),
        ("sac", "batch_size", 0),
        ("sac", "critic_dropout", 1.0),
        ("sac", "n_critics", 0),
        ("sac", "actor_lr", 0),
        ("replay", "capacity", 0),
        ("train", "eval_episodes", 0),
    ],
)
def test_out_of_range_names_the_key(section, key, value):
    msg = error_of({section: {key: value}})
    assert f"{section}.{key}" in msg
    assert repr(value) in msg  # the offending value is shown


def test_boundary_values_are_accepted():
    cfg = validate_config({"sac": {"tau": 1.0, "gamma": 1.0, "critic_dropout": 0.0, "critic_subset": 2}})
    assert cfg.sac.tau == 1.0 and cfg.sac.gamma == 1.0 and cfg.sac.critic_subset == 2


def test_critic_subset_larger_than_ensemble_is_rejected():
    msg = error_of({"sac": {"n_critics": 2, "critic_subset": 5}})
    assert "critic_subset" in msg and "n_critics" in msg
    assert validate_config({"sac": {"n_critics": 10, "critic_subset": 2}}).sac.critic_subset == 2


def test_actor_updates_above_utd_are_rejected():
    msg = error_of({"sac": {"utd": 2, "actor_updates_per_step": 3}})
    assert "actor_updates_per_step" in msg and "utd" in msg


def test_replay_chunk_larger_than_capacity_is_rejected_or_persists(tmp_path):
    """A config that validates must be able to train: chunk_size > capacity may not crash mid-run.

    Either validation names replay.chunk_size, or the buffer, persisted as the trainer does it (after
    every step, the tail at checkpoints), loses nothing.
    """
    data = {"replay": {"capacity": 300, "chunk_size": 500}}
    try:
        cfg = validate_config(data)
    except ConfigError as err:
        assert "chunk_size" in str(err)
        return
    buf, store = ReplayBuffer(cfg.replay.capacity, 1, 1), ChunkStore(tmp_path / "replay")
    for i in range(1200):
        buf.add(np.array([i]), np.array([0.0]), float(i), np.array([i + 1]), False, False)
        buf.persist(store, cfg.replay.chunk_size)  # raised ValueError at step 500 ("overwritten before persisted")
    buf.persist(store, cfg.replay.chunk_size, final=True)
    restored = ReplayBuffer(cfg.replay.capacity, 1, 1)
    restored.restore(store)
    assert restored.total == 1200
    np.testing.assert_array_equal(restored.data["reward"], buf.data["reward"])


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("sac: {batch_size: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


def test_load_packaged_config_by_name():
    cfg = load_config("pendulum")
    assert resolve_config_path("pendulum") == REPO / "config" / "pendulum.yaml"
    assert cfg.env.id == "Pendulum-v1"
    assert cfg.sac.hidden_sizes == [256, 256]
    assert cfg.train.total_steps == 15000
    assert load_config("pendulum.yaml").model_dump() == cfg.model_dump()


def test_overrides_apply_and_are_validated():
    cfg = load_config("pendulum", {"train.seed": 7, "sac.device": "cpu", "env.kwargs.g": 9.0})
    assert cfg.train.seed == 7 and cfg.sac.device == "cpu" and cfg.env.kwargs == {"g": 9.0}
    with pytest.raises(ConfigError, match="sac.batchsize"):
        load_config("pendulum", {"sac.batchsize": 3})
    with pytest.raises(ConfigError, match="sac.tau"):
        load_config("pendulum", {"sac.tau": 5})


@pytest.mark.parametrize("name", ["no_such_config", "no_such_config.yaml", "missing/dir/x.yaml"])
def test_missing_config_raises_config_error(name):
    with pytest.raises(ConfigError, match="not found"):
        load_config(name)


def test_file_path_config(tmp_path):
    path = write_yaml(tmp_path / "mine.yaml", {"sac": {"batch_size": 32}, "train": {"seed": 3}})
    cfg = load_config(path)
    assert cfg.sac.batch_size == 32 and cfg.train.seed == 3


def test_to_yaml_round_trips():
    cfg = load_config("pendulum", {"sac.critic_subset": 2, "sac.n_critics": 4})
    again = validate_config(yaml.safe_load(cfg.to_yaml()))
    assert again.model_dump() == cfg.model_dump()


def test_cli_rejects_bad_config_before_creating_the_run_dir(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", {"env": {"id": "Pendulum-v1"}, "sac": {"batchsize": 64}})
    run_dir = tmp_path / "run"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "sac_robot.cli.main", "train", "--config", str(bad), "--run-dir", str(run_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "sac.batchsize" in proc.stderr
    assert "unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("data", "key"),
    [({"sac": {"tau": 2}}, "sac.tau"), ({"sac": {"batch_size": "big"}}, "sac.batch_size")],
)
def test_cli_in_process_exit_code_and_message(tmp_path, capsys, monkeypatch, data, key):
    monkeypatch.chdir(tmp_path)
    bad = write_yaml(tmp_path / "bad.yaml", data)
    assert main(["train", "--config", str(bad)]) == 2  # default run dir: runs/bad_seed0
    err = capsys.readouterr().err
    assert key in err
    assert not (tmp_path / "runs").exists()


def test_cli_missing_config_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "no_such_config", "--run-dir", str(tmp_path / "r")]) == 2
    assert "no_such_config" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
