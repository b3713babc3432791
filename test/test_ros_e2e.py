# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""End to end over real rclpy and DDS: stand-ins, collectors and the learner as processes.

Every test runs on its own ROS domain (conftest's ``ros_env``), limited to localhost, and stops every
process it started. Replay chunks, acknowledgements and the policy topic are checked from outside,
as a user would.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String, UInt8MultiArray

from sac_robot.core.replay import ChunkStore, ReplayBuffer
from sac_robot.core.wire import decode_ack
from sac_robot.nodes import ros_io as io
from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.testing import rig
from sac_robot.training.learner_core import RESET_COLUMNS
from sac_robot.training.run_log import PROGRESS_COLUMNS

pytestmark = [pytest.mark.ros, pytest.mark.slow]

OBS_DIM, ACT_DIM = 24, 4
ROBOT = {
    "description": "bipedal_walker",
    "observation": "bipedal_walker",
    "action": {"mode": "effort"},
    "reward": "privileged",
    "termination": "privileged",
    "safety": {
        "command_mode": "effort",
        "safe_mode": "zero_effort",
        "position_margin": 0.0,
        "max_effort_fraction": 1.0,
        "max_velocity_fraction": 1.0,
        "sensor_timeout_s": 0.5,
        "max_roll": 3.14,
        "max_pitch": 1.57,
    },
    "reset": {"mode": "sim_service"},
    "control_rate_hz": 50,
    "lockstep": True,
    "episode_seconds": 4,
    "send_batch": 32,
    "publish_every_updates": 100,
    "eval_every_steps": 1000,
    "eval_episodes": 1,
}


def write_config(tmp_path: Path, total_steps: int = 3000) -> Path:
    """A quick BipedalWalker config. One torch thread: with the default (all cores) a small learner sharing
    two cores with other processes slows down about tenfold."""
    cfg = {
        "env": {"id": "BipedalWalker-v3"},
        "sac": {
            "hidden_sizes": [64, 64],
            "learning_starts": 500,
            "batch_size": 64,
            "device": "cpu",
            "torch_threads": 1,
        },
        "replay": {"capacity": 100_000},
        "train": {"total_steps": total_steps},
        "robot": ROBOT,
    }
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def node_cmd(module: str, name: str, namespace: str = "", **params: object) -> list[str]:
    """A node named ``name`` (in ``namespace``) with parameters ``params``."""
    return rig.node_cmd(module, params, name=name, namespace=namespace)


class Nodes(rig.ProcessGroup):
    """The test's node processes (on its proc_reaper), with their output in log files that failures quote;
    ``stop(*labels)`` gives each 15 s to exit cleanly on SIGINT and returns the exit codes."""

    def __init__(self, reaper: rig.Reaper, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(env, log_dir, reaper=reaper, grace_s=15.0)


def learner_diagnostics(msg: DiagnosticArray) -> dict[str, str] | None:
    for status in msg.status:
        if status.name == "sac_robot/learner":
            return {kv.key: kv.value for kv in status.values}
    return None


def check_chunks(run_dir: Path) -> tuple[ReplayBuffer, dict[str, int]]:
    """Restore the persisted replay and check every chunk's acknowledgement table against its contents:
    each chunk holds exactly the transitions by which the acks advanced since the previous one."""
    store = ChunkStore(run_dir / "replay")
    chunks = list(store.chunks())
    assert chunks, "no replay chunks written"
    previous: dict[str, int] = {}
    for chunk in chunks:
        _, meta = store.read_with_meta(chunk)
        acks = {k: int(v) for k, v in meta["acks"].items()}
        assert set(previous) <= set(acks), f"{chunk.path.name}: a stream disappeared from the acks"
        advanced = {k: v - previous.get(k, -1) for k, v in acks.items()}
        assert all(n >= 0 for n in advanced.values()), f"{chunk.path.name}: an ack went backwards {acks} < {previous}"
        assert sum(advanced.values()) == chunk.count, f"{chunk.path.name}: {chunk.count} transitions, acks {advanced}"
        previous = acks
    buffer = ReplayBuffer(100_000, OBS_DIM, ACT_DIM)
    buffer.restore(store)
    assert buffer.total == chunks[-1].stop
    assert store.last_meta()["acks"] == previous
    return buffer, previous


def launched_pids(stderr_text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"started (\S+) \(pid (\d+)\)", stderr_text)}


@pytest.mark.timeout(300)
def test_train_sim_runs_to_completion(tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any) -> None:
    t0 = time.monotonic()
    total_steps = 2500
    config, run_dir = write_config(tmp_path, total_steps), tmp_path / "run"
    log_path = tmp_path / "launch.log"
    cmd = [
        sys.executable,
        "-m",
        "sac_robot.cli.main",
        "launch",
        "train_sim",
        f"config:={config}",
        f"run_dir:={run_dir}",
    ]
    with open(log_path, "w") as log:
        launcher = proc_reaper.spawn(cmd, env=ros_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        rc = launcher.wait(timeout=150)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        # The launcher starts each node in its own session: make sure none outlives a failed test.
        pids = launched_pids(log_path.read_text(errors="replace"))
        if launcher.poll() is None:
            proc_reaper.stop(launcher, grace_s=30.0)
        leftover = {name: pid for name, pid in pids.items() if rig.group_alive(pid)}
        for pid in leftover.values():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if str(config).encode() in f.read():  # the node this test started (not a reused pid)
                        rig.signal_group(pid, signal.SIGKILL)
            except OSError:
                pass
    text = log_path.read_text(errors="replace")
    assert rc == 0, f"launcher exit {rc}\n{text[-5000:]}"
    assert set(pids) == {"stand_in", "learner", "collector"}, text[-3000:]
    assert not leftover, f"processes left behind: {leftover}"

    # Replay: one collector stream, contiguous from sequence 0, all of it on disk.
    buffer, acks = check_chunks(run_dir)
    assert len(acks) == 1, acks
    ((stream, acked),) = acks.items()
    assert acked == buffer.total - 1, (stream, acked, buffer.total)
    assert buffer.total >= total_steps

    assert list((run_dir / "checkpoints").glob("ckpt_*.safetensors")), "no checkpoint written"
    with open(run_dir / "progress.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    # the train columns, then the robot's reset statistics (summed over collectors, docs/topics.md)
    assert reader.fieldnames == PROGRESS_COLUMNS + RESET_COLUMNS
    assert rows, "no evaluation row: the collector never evaluated a policy"
    assert all(int(r["resets"]) >= 1 for r in rows)
    assert all(("terminated" in r["reset_reasons"]) or ("time limit" in r["reset_reasons"]) for r in rows)
    assert all(math.isfinite(float(r["eval_return_mean"])) and float(r["eval_len_mean"]) >= 1 for r in rows)
    assert any(int(r["updates"]) > 0 for r in rows)  # evaluations ran a trained policy

    policy = FrozenPolicy.load(run_dir / "policy.safetensors")
    assert (policy.obs_dim, policy.act_dim) == (OBS_DIM, ACT_DIM)
    action = policy.act(np.zeros(OBS_DIM, np.float32))
    assert action.shape == (ACT_DIM,) and np.all(np.abs(action) <= 1.0)
    print(f"train_sim: {buffer.total} transitions, {len(rows)} eval rows, {time.monotonic() - t0:.1f} s")


@pytest.mark.timeout(300)
def test_two_collectors_feed_one_learner(
    tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any, listener: Any
) -> None:
    t0 = time.monotonic()
    config, run_dir = write_config(tmp_path), tmp_path / "run"
    nodes = Nodes(proc_reaper, ros_env, tmp_path)
    nodes.start("learner", node_cmd("learner_node", "learner", config=config, run_dir=run_dir, total_steps=1_000_000))
    for i, robot in enumerate(("robot1", "robot2"), start=1):
        nodes.start(f"stand_in_{robot}", node_cmd("box2d_stand_in", "stand_in", robot, lockstep=True, seed=i))
        nodes.start(
            f"collector_{robot}",
            node_cmd("collector_node", "collector", robot, config=config, collector_id=robot, seed=i),
        )
    acked: dict[str, int] = {}

    def on_ack(msg: String) -> None:
        ack = decode_ack(msg.data)
        key = f"{ack['collector_id']}|{ack['epoch']}"
        acked[key] = max(acked.get(key, -1), ack["acked_seq"])

    ear = listener("ack_listener")
    ear.node.create_subscription(String, io.ACK, on_ack, io.ACK_QOS)
    need = 300

    def both_acked() -> bool:
        per_robot = {k.split("|")[0]: v for k, v in acked.items()}
        return all(per_robot.get(r, -1) >= need - 1 for r in ("robot1", "robot2"))

    ear.spin_until(both_acked, 120.0, f"{need} acknowledged transitions from each collector", nodes)
    codes = nodes.stop("collector_robot1", "collector_robot2", "stand_in_robot1", "stand_in_robot2", "learner")
    assert codes["learner"] == 0, nodes.logs()

    buffer, acks = check_chunks(run_dir)
    assert sorted(k.split("|")[0] for k in acks) == ["robot1", "robot2"], acks
    assert all(v >= need - 1 for v in acks.values()), acks
    assert buffer.total == sum(v + 1 for v in acks.values())  # every stream contiguous from 0, nothing twice
    print(f"two collectors: acks {acks}, {buffer.total} stored, {time.monotonic() - t0:.1f} s")


def start_single_robot(nodes: Nodes, config: Path, run_dir: Path) -> None:
    nodes.start("learner", node_cmd("learner_node", "learner", config=config, run_dir=run_dir, total_steps=1_000_000))
    nodes.start("stand_in", node_cmd("box2d_stand_in", "stand_in", lockstep=True, seed=0))
    nodes.start("collector", node_cmd("collector_node", "collector", config=config, collector_id="solo", seed=0))


@pytest.mark.timeout(300)
def test_late_subscriber_gets_the_latest_policy(
    tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any, listener: Any
) -> None:
    t0 = time.monotonic()
    nodes = Nodes(proc_reaper, ros_env, tmp_path)
    start_single_robot(nodes, write_config(tmp_path), tmp_path / "run")
    diag: list[dict[str, str]] = []
    ear = listener("diagnostics_listener")

    def on_diag(msg: DiagnosticArray) -> None:
        values = learner_diagnostics(msg)
        if values is not None:
            diag.append(values)

    ear.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    ear.spin_until(lambda: bool(diag) and int(diag[-1]["policy_version"]) >= 1, 120.0, "a published policy", nodes)

    # No data, no updates, no new policy: once the learner is idle nothing is published any more.
    nodes.stop("collector", "stand_in")
    seen = len(diag)

    def idle() -> bool:
        recent = diag[seen:]
        return len(recent) >= 3 and recent[-1]["updates"] == recent[-3]["updates"]

    ear.spin_until(idle, 60.0, "the learner to go idle")
    version = int(diag[-1]["policy_version"])
    assert version >= 1

    policies: list[FrozenPolicy] = []
    late = listener("late_policy_subscriber")
    late.node.create_subscription(
        UInt8MultiArray, io.POLICY, lambda m: policies.append(FrozenPolicy.from_bytes(bytes(m.data))), io.POLICY_QOS
    )
    late.spin_until(lambda: bool(policies), 20.0, "the transient-local policy")
    assert int(policies[0].meta["version"]) >= version
    ear.spin_until(lambda: len(diag) > seen + 4, 10.0, "more diagnostics")
    assert int(diag[-1]["policy_version"]) == version, "the learner published again: the test proves nothing"
    assert len(policies) == 1  # depth 1: the newest policy only
    assert (policies[0].obs_dim, policies[0].act_dim) == (OBS_DIM, ACT_DIM)
    assert nodes.stop("learner")["learner"] == 0, nodes.logs()
    print(f"late subscriber: policy v{policies[0].meta['version']}, {time.monotonic() - t0:.1f} s")


@pytest.mark.timeout(300)
def test_acknowledged_sequence_numbers_advance(
    tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any, listener: Any
) -> None:
    t0 = time.monotonic()
    nodes = Nodes(proc_reaper, ros_env, tmp_path)
    start_single_robot(nodes, write_config(tmp_path), tmp_path / "run")
    acks: list[dict] = []
    ear = listener("ack_listener")
    ear.node.create_subscription(String, io.ACK, lambda m: acks.append(decode_ack(m.data)), io.ACK_QOS)

    def advanced_enough() -> bool:
        distinct = {a["acked_seq"] for a in acks if a["collector_id"] == "solo"}
        return len(distinct) >= 6 and max(distinct) >= 1000

    ear.spin_until(advanced_enough, 120.0, "acknowledgements to advance", nodes)
    codes = nodes.stop("collector", "stand_in", "learner")
    assert codes["learner"] == 0, nodes.logs()

    mine = [a for a in acks if a["collector_id"] == "solo"]
    assert len({a["epoch"] for a in mine}) == 1  # one collector process, one epoch
    seqs = [a["acked_seq"] for a in mine]
    # The learner repeats its acks every flush; each new value is higher than every earlier one.
    assert all(b >= a for a, b in itertools.pairwise(seqs)), seqs
    changes = [b for a, b in itertools.pairwise(seqs) if b != a]
    assert len(changes) >= 5, seqs
    assert seqs[-1] >= 1000
    stored = [a["stored"] for a in mine]
    assert stored == sorted(stored)  # the learner's total never shrinks either
    print(f"acks: {len(mine)} messages, {len(set(seqs))} distinct, last {seqs[-1]}, {time.monotonic() - t0:.1f} s")
