# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Checkpoints resume the learner bit for bit; exported policies act like the agent, with numpy alone.

Also: old checkpoints are pruned, a corrupt newest one is skipped for the previous good one, a damaged
policy file is refused, and nothing a run writes is a pickle.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sac_robot.core.atomic_io import CorruptFileError, load_tensors
from sac_robot.core.checkpoint import CheckpointManager
from sac_robot.core.config import Config, SACConfig
from sac_robot.core.export import export_policy
from sac_robot.core.sac import SAC
from sac_robot.policy_runtime import FrozenPolicy, PolicyFormatError

RUNTIME_PATH = Path(__file__).resolve().parents[1] / "sac_robot" / "policy_runtime.py"
OBS, ACT, B = 4, 2, 16
LOW, HIGH = np.array([-1.0, 0.0]), np.array([3.0, 0.5])


def make_agent(seed: int = 0, **overrides) -> SAC:
    kw = {"hidden_sizes": [8, 8], "device": "cpu", "batch_size": B, "normalize_obs": True}
    kw.update(overrides)
    return SAC(OBS, ACT, LOW, HIGH, SACConfig(**kw), seed=seed)


def make_batch(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(loc=3.0, scale=2.0, size=(B, OBS)).astype(np.float32),
        "action": rng.uniform(LOW, HIGH, size=(B, ACT)).astype(np.float32),
        "reward": rng.normal(size=B).astype(np.float32),
        "next_obs": rng.normal(loc=3.0, scale=2.0, size=(B, OBS)).astype(np.float32),
        "terminated": (rng.random(B) < 0.2).astype(np.float32),
        "truncated": (rng.random(B) < 0.2).astype(np.float32),
        "intervened": np.zeros(B, np.float32),
    }


def trained_agent(**overrides) -> SAC:
    agent = make_agent(**overrides)
    for seed in range(4):
        batch = make_batch(seed)
        agent.normalizer.update(batch["obs"])
        agent.update(batch)
    return agent


def learner_state(agent: SAC) -> dict[str, torch.Tensor]:
    """Every tensor that the next update depends on or changes."""
    out = {}
    for prefix, module in (("actor", agent.actor), ("critic", agent.critic), ("target", agent.critic_target)):
        out.update({f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
    out["log_alpha"] = agent.log_alpha.detach().clone()
    for name, opt in (("actor", agent.actor_opt), ("critic", agent.critic_opt), ("alpha", agent.alpha_opt)):
        for pid, state in opt.state_dict()["state"].items():
            out.update({f"opt.{name}.{pid}.{k}": torch.as_tensor(v).clone() for k, v in state.items()})
    return out


def assert_same_state(a: SAC, b: SAC) -> None:
    sa, sb = learner_state(a), learner_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        if k.endswith(".step"):  # Adam's step counter: compared by value (see test_tensor_files_keep_shapes)
            assert torch.equal(sa[k].reshape(-1), sb[k].reshape(-1)), f"{k} differs"
            continue
        assert torch.equal(sa[k], sb[k]), f"{k} differs"
    assert a.updates == b.updates
    np.testing.assert_array_equal(a.normalizer.mean, b.normalizer.mean)
    np.testing.assert_array_equal(a.normalizer.var, b.normalizer.var)


# --- checkpoints --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [{}, {"n_critics": 4, "critic_subset": 2, "critic_dropout": 0.1, "critic_layernorm": True}],
    ids=["plain", "redq-droq"],
)
def test_checkpoint_round_trip_gives_a_bitwise_identical_next_update(tmp_path, options):
    original = trained_agent(**options)
    tensors, meta = original.state_dict()
    path = CheckpointManager(tmp_path).save(1234, tensors, meta)
    assert path == tmp_path / "checkpoints" / "ckpt_000000001234.safetensors"

    # the original goes on from the moment of the checkpoint (global torch RNG included: dropout uses it)
    expected_metrics = [original.update(make_batch(s)) for s in (10, 11)]
    expected_action = original.act(np.full(OBS, 2.0))

    loaded_tensors, loaded_meta, loaded_path = CheckpointManager(tmp_path).load_latest()
    assert loaded_path == path
    fresh = make_agent(seed=99, **options)  # different initial weights and RNG streams
    fresh.load_state_dict(loaded_tensors, loaded_meta)
    metrics = [fresh.update(make_batch(s)) for s in (10, 11)]
    action = fresh.act(np.full(OBS, 2.0))

    assert_same_state(original, fresh)
    for m, e in zip(metrics, expected_metrics, strict=True):
        assert {k: float(v) for k, v in m.items()} == {k: float(v) for k, v in e.items()}
    np.testing.assert_array_equal(action, expected_action)


def test_keep_prunes_old_checkpoints(tmp_path):
    tensors, meta = make_agent().state_dict()
    mgr = CheckpointManager(tmp_path, keep=2)
    for step in (100, 200, 300, 400, 500):
        mgr.save(step, tensors, meta)
    assert [p.name for p in mgr.paths()] == ["ckpt_000000000400.safetensors", "ckpt_000000000500.safetensors"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [p.name for p in mgr.paths()]
    assert mgr.load_latest()[2].name == "ckpt_000000000500.safetensors"
    # checkpoints sort by step, not by the order they were written in
    mgr.save(10_000, tensors, meta)
    mgr.save(9_000, tensors, meta)
    assert [p.name for p in mgr.paths()] == ["ckpt_000000009000.safetensors", "ckpt_000000010000.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_newest_checkpoint_is_skipped_for_the_previous(tmp_path, caplog, damage):
    agent = trained_agent()
    mgr = CheckpointManager(tmp_path, keep=3)
    older_tensors, older_meta = agent.state_dict()
    older_tensors = {k: v.copy() for k, v in older_tensors.items()}  # on the CPU they are views of live weights
    mgr.save(200, older_tensors, older_meta)
    agent.update(make_batch(20))
    newest = mgr.save(400, *agent.state_dict())
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        newest.write_bytes(data[:-7] + bytes([data[-7] ^ 0xFF]) + data[-6:])
    else:
        newest.write_bytes(b"")

    with pytest.raises(CorruptFileError, match=str(newest)):
        load_tensors(newest)
    with caplog.at_level(logging.ERROR, logger="sac_robot.core.checkpoint"):
        tensors, meta, path = mgr.load_latest()
    assert path.name == "ckpt_000000000200.safetensors"
    assert str(newest) in caplog.text
    assert meta["updates"] == older_meta["updates"] == 4
    for k, v in older_tensors.items():
        np.testing.assert_array_equal(tensors[k], v, err_msg=k)


def test_no_usable_checkpoint_raises_naming_the_folder_and_the_bad_file(tmp_path):
    mgr = CheckpointManager(tmp_path)
    with pytest.raises(FileNotFoundError, match="none found"):
        mgr.load_latest()
    only = mgr.save(5, *make_agent().state_dict())
    only.write_bytes(only.read_bytes()[:100])
    with pytest.raises(FileNotFoundError) as info:
        mgr.load_latest()
    assert str(only) in str(info.value) and str(mgr.dir) in str(info.value)


def test_tensor_files_keep_shapes_and_dtypes(tmp_path):
    """What is saved comes back with the same shape, dtype and values, 0-d arrays included.

    Adam's per-parameter ``step`` is a 0-d tensor; a checkpoint must not turn it into shape (1,).
    """
    arrays = {
        "scalar": np.array(6.0, np.float32),
        "vector": np.arange(3, dtype=np.float64),
        "matrix": np.arange(6, dtype=np.int64).reshape(2, 3),
        "transposed": np.arange(6, dtype=np.float32).reshape(2, 3).T,  # not C-contiguous
    }
    path = CheckpointManager(tmp_path).save(1, arrays, {"k": 1})
    loaded, meta = load_tensors(path)
    assert meta == {"k": 1}
    for k, v in arrays.items():
        assert loaded[k].shape == v.shape, k
        assert loaded[k].dtype == v.dtype, k
        np.testing.assert_array_equal(loaded[k], v, err_msg=k)


# --- export and the numpy runtime -------------------------------------------------------------
def observations(n: int = 25) -> np.ndarray:
    rng = np.random.default_rng(5)
    obs = rng.normal(loc=3.0, scale=2.0, size=(n, OBS))
    obs[0] = 1e4  # clipped to +10 by the normaliser
    obs[1] = -1e4
    return obs


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu", "silu"])
def test_frozen_policy_acts_like_the_agent(tmp_path, activation):
    agent = trained_agent(activation=activation)
    assert agent.normalizer.count > 0 and np.all(np.abs(agent.normalizer.mean) > 1.0)  # normalisation matters
    path = export_policy(agent, tmp_path / "policy.safetensors", env_id="Test-v0")
    policy = FrozenPolicy.load(path)
    assert policy.obs_dim == OBS and policy.act_dim == ACT
    assert policy.meta["env_id"] == "Test-v0" and policy.meta["activation"] == activation
    np.testing.assert_allclose(policy.meta["action_low"], LOW)
    np.testing.assert_allclose(policy.meta["action_high"], HIGH)
    for obs in observations():
        expected = agent.act(obs, deterministic=True)
        got = policy.act(obs)
        assert got.dtype == np.float64 and got.shape == (ACT,)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        assert np.all(got >= LOW - 1e-6) and np.all(got <= HIGH + 1e-6)
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(OBS + 1))


BLOCKED_RUNTIME_SCRIPT = r"""
import importlib.abc, importlib.util, json, sys

BLOCKED = ("torch", "sac_robot", "safetensors")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"import of {name} blocked by the test")
        return None

sys.meta_path.insert(0, Block())
for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        sys.exit(f"the import blocker did not stop {name}")

runtime_path, policy_path, obs_path = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("standalone_policy_runtime", runtime_path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
import numpy as np

policy = module.FrozenPolicy.load(policy_path)
obs = np.asarray(json.load(open(obs_path)))
actions = [policy.act(o).tolist() for o in obs]
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"actions": actions, "leaked": leaked}))
"""


def test_runtime_works_without_torch_or_sac_robot(tmp_path):
    agent = trained_agent()
    path = export_policy(agent, tmp_path / "policy.safetensors")
    obs = observations()
    (tmp_path / "obs.json").write_text(json.dumps(obs.tolist()))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNTIME_SCRIPT, str(RUNTIME_PATH), str(path), str(tmp_path / "obs.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["leaked"] == []
    got = np.asarray(out["actions"])
    expected = np.stack([agent.act(o, deterministic=True) for o in obs])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    in_process = np.stack([FrozenPolicy.load(path).act(o) for o in obs])
    np.testing.assert_array_equal(got, in_process)


def test_damaged_policy_file_is_rejected(tmp_path):
    agent = make_agent(hidden_sizes=[4])
    path = export_policy(agent, tmp_path / "policy.safetensors")
    data = path.read_bytes()
    FrozenPolicy.from_bytes(data)  # intact: loads
    header_end = 8 + int.from_bytes(data[:8], "little")
    # every single byte, in the length prefix, the JSON header and the tensor data
    for i in range(len(data)):
        for mask in (0xFF, 0x01):
            damaged = bytearray(data)
            damaged[i] ^= mask
            with pytest.raises(PolicyFormatError):
                FrozenPolicy.from_bytes(bytes(damaged), "policy.safetensors")
    assert header_end < len(data)
    for n in (0, 7, 8, header_end - 1, header_end, len(data) - 1):
        with pytest.raises(PolicyFormatError):
            FrozenPolicy.from_bytes(data[:n])
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    path.write_bytes(bytes(flipped))
    with pytest.raises(PolicyFormatError, match=str(path)):
        FrozenPolicy.load(path)


def test_a_checkpoint_is_not_a_policy(tmp_path):
    path = CheckpointManager(tmp_path).save(1, *make_agent().state_dict())
    with pytest.raises(PolicyFormatError, match="format"):
        FrozenPolicy.load(path)


# --- nothing in a run directory is a pickle ------------------------------------------------------
PICKLE_OR_TORCH_SAVE = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


def assert_plain_safetensors(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) >= 8, path
    n = int.from_bytes(data[:8], "little")
    assert 2 <= n <= len(data) - 8, path
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    assert isinstance(header, dict)
    metadata = header.pop("__metadata__", {})
    assert isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    assert header, f"{path} holds no tensors"
    end = 0
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"}, (path, name)
        assert info["dtype"] in ("F32", "F64", "I64", "I32", "U8", "U32", "U64", "BOOL", "I8", "I16", "F16", "BF16")
        end = max(end, info["data_offsets"][1])
    assert 8 + n + end == len(data), f"{path}: bytes after the last tensor"


@pytest.mark.timeout(120)
def test_no_file_in_a_run_dir_is_a_pickle(tmp_path):
    from sac_robot.training.trainer import Trainer

    cfg = Config.model_validate(
        {
            "env": {"id": "Pendulum-v1"},
            "sac": {"hidden_sizes": [8], "batch_size": 16, "learning_starts": 50, "device": "cpu"},
            "replay": {"chunk_size": 100},
            "train": {"total_steps": 250, "eval_interval": 250, "eval_episodes": 1, "checkpoint_interval": 200},
        }
    )
    run_dir = tmp_path / "run"
    Trainer(cfg, run_dir, progress=False).run()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.relative_to(run_dir).as_posix() for p in files}
    assert "policy.safetensors" in names and "config.yaml" in names
    assert any(n.startswith("checkpoints/") for n in names) and any(n.startswith("replay/") for n in names)
    for p in files:
        assert p.suffix not in (".pt", ".pth", ".pkl", ".pickle", ".npy", ".npz", ".joblib"), p
        head = p.read_bytes()[:4]
        assert not head.startswith(PICKLE_OR_TORCH_SAVE), f"{p} looks like a pickle / torch.save file"
        if p.suffix == ".safetensors":
            assert_plain_safetensors(p)
    assert sum(p.suffix == ".safetensors" for p in files) >= 3
