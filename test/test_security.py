# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Authenticated weights and transitions, replay protection, and rogue publishers being ignored."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from batches import random_batch

from sac_robot.core.config import SACConfig
from sac_robot.core.export import policy_bytes, policy_tensors_and_meta
from sac_robot.core.sac import SAC
from sac_robot.core.wire import (
    TransitionBatch,
    VersionGate,
    WireError,
    accept_policy,
    decode_transitions,
    encode_transitions,
    load_key,
    open_policy,
    sign_policy,
)
from sac_robot.policy_runtime import PolicyFormatError

KEY = b"0123456789abcdef0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]


def _agent() -> SAC:
    return SAC(24, 4, -np.ones(4), np.ones(4), SACConfig(hidden_sizes=[8], device="cpu"), seed=0)


def _batch(n: int = 3, first: int = 0) -> TransitionBatch:
    return random_batch(first, n, obs_dim=24, act_dim=4, collector="robot1", epoch=7, seed=0)


def test_signed_policy_round_trip_and_every_forgery_is_refused() -> None:
    payload = policy_bytes(_agent(), run_id="run", version=3)
    signed = sign_policy(payload, "run", 3, KEY)
    assert open_policy(signed, KEY) == (payload, "run", 3)
    tampered = bytearray(signed)
    tampered[len(tampered) // 2] ^= 1
    for data, key, why in [
        (bytes(tampered), KEY, "wrong signature"),
        (sign_policy(payload, "run", 3, b"another key of 16+ bytes"), KEY, "wrong signature"),
        (payload, KEY, "unsigned"),
        (signed, None, "no key"),
    ]:
        with pytest.raises(WireError, match=why):
            open_policy(data, key)


def test_replayed_or_stale_policies_are_refused() -> None:
    agent, gate = _agent(), VersionGate()
    msg = {v: sign_policy(policy_bytes(agent, run_id="a", version=v), "a", v, KEY) for v in (1, 2)}
    assert accept_policy(msg[1], KEY, gate).meta["version"] == 1
    assert accept_policy(msg[2], KEY, gate).meta["version"] == 2
    with pytest.raises(WireError, match="does not rise"):
        accept_policy(msg[1], KEY, gate)
    new_run = sign_policy(policy_bytes(agent, run_id="b", version=1), "b", 1, KEY)
    assert accept_policy(new_run, KEY, gate).meta["run_id"] == "b"
    with pytest.raises(WireError, match="retired run"):
        accept_policy(msg[2], KEY, gate)
    # The signed header must agree with the metadata inside the file.
    mismatched = sign_policy(policy_bytes(agent, run_id="b", version=5), "b", 9, KEY)
    with pytest.raises(WireError, match="does not match"):
        accept_policy(mismatched, KEY, gate)


def test_policy_with_nan_weights_is_refused() -> None:
    from sac_robot.core.atomic_io import encode_tensors

    tensors, meta = policy_tensors_and_meta(_agent(), run_id="a", version=1)
    tensors["head.weight"] = tensors["head.weight"].copy()
    tensors["head.weight"][0, 0] = np.nan
    with pytest.raises(PolicyFormatError, match="NaN"):
        accept_policy(encode_tensors(tensors, meta), None, VersionGate())


def test_signed_transitions() -> None:
    batch = _batch()
    data = encode_transitions(batch, KEY)
    out = decode_transitions(data, KEY)
    assert out.collector_id == "robot1" and out.epoch == 7
    np.testing.assert_array_equal(out.arrays["obs"], batch.arrays["obs"])
    with pytest.raises(WireError, match="unsigned"):
        decode_transitions(encode_transitions(batch), KEY)
    with pytest.raises(WireError, match="wrong signature"):
        decode_transitions(encode_transitions(batch, b"x" * 32), KEY)
    forged = bytearray(data)
    forged[100] ^= 0x40  # a reward or observation changed in flight
    with pytest.raises(WireError, match="wrong signature"):
        decode_transitions(bytes(forged), KEY)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:-4], "bytes"),
        (lambda d: d + b"\0" * 4, "bytes"),
        (lambda d: b"XXXX" + d[4:], "magic"),
        (lambda d: d[:4] + b"\x09\x00" + d[6:], "version"),
        (lambda d: d[:10], "too short"),
    ],
)
def test_malformed_transitions_are_refused(mutate: Any, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_transitions(mutate(encode_transitions(_batch())))


def test_nan_transitions_are_refused() -> None:
    batch = _batch()
    batch.arrays["next_obs"][1, 3] = np.inf
    with pytest.raises(WireError, match="next_obs"):
        decode_transitions(encode_transitions(batch))


def test_key_file_checks(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"tiny")
    with pytest.raises(WireError, match="at least 16"):
        load_key(str(short))
    with pytest.raises(WireError, match="cannot read"):
        load_key(str(tmp_path / "missing.key"))
    assert load_key(None) is None


# --- rogue publishers against running nodes ---------------------------------------------------------


def _keyed_config(tmp_path: Path) -> tuple[Path, Path]:
    key_file = tmp_path / "shared.key"
    key_file.write_bytes(KEY)
    cfg = yaml.safe_load((ROOT / "config" / "bipedal_walker.yaml").read_text())
    cfg["sac"].update(hidden_sizes=[16], learning_starts=10**9, batch_size=16, device="cpu", torch_threads=1)
    cfg["replay"]["capacity"] = 10_000
    cfg["robot"]["security"] = {"key_file": str(key_file)}
    path = tmp_path / "keyed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, key_file


def _diagnostics(context: Any, prefix: str, predicate: Any, timeout_s: float) -> dict[str, str]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    node = rclpy.create_node(f"diag_{int(time.time() * 1000) % 100000}", context=context)
    seen: dict[str, str] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(prefix):
                seen.clear()
                seen.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
            if seen and predicate(seen):
                return dict(seen)
        raise AssertionError(f"{prefix} diagnostics never satisfied the check; last: {seen}")
    finally:
        executor.shutdown()
        node.destroy_node()


@pytest.mark.timeout(180)
def test_rogue_publishers_are_ignored(
    tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any, rclpy_context: Any
) -> None:
    import rclpy
    from std_msgs.msg import UInt8MultiArray

    from sac_robot.nodes import ros_io as io

    config, _ = _keyed_config(tmp_path)
    py = [sys.executable, "-m"]
    learner = proc_reaper.spawn(
        py
        + [
            "sac_robot.nodes.learner_node",
            "--ros-args",
            "-p",
            f"config:={config}",
            "-p",
            f"run_dir:={tmp_path / 'run'}",
        ],
        env=ros_env,
    )
    proc_reaper.spawn(py + ["sac_robot.nodes.box2d_stand_in", "--ros-args", "-p", "lockstep:=true"], env=ros_env)
    proc_reaper.spawn(
        py + ["sac_robot.nodes.collector_node", "--ros-args", "-p", f"config:={config}", "-p", "collector_id:=honest"],
        env=ros_env,
    )

    node = rclpy.create_node("rogue", context=rclpy_context)
    pub_tr = node.create_publisher(UInt8MultiArray, io.TRANSITIONS, io.TRANSITIONS_QOS)
    pub_policy = node.create_publisher(UInt8MultiArray, io.POLICY, io.POLICY_QOS)
    # The honest collector's signed transitions arrive and are stored.
    first = _diagnostics(rclpy_context, "sac_robot/learner", lambda d: int(d["transitions_stored"]) > 200, 90)
    rejected_before = int(first["rejected_messages"])
    for key in (None, b"wrong key, sixteen bytes or more"):  # unsigned, then signed with the wrong key
        rogue = _batch(50, 0)
        rogue.collector_id = "rogue"
        for _ in range(5):
            pub_tr.publish(UInt8MultiArray(data=encode_transitions(rogue, key)))
            time.sleep(0.05)
    poisoned = sign_policy(policy_bytes(_agent(), run_id="rogue", version=10**6), "rogue", 10**6, b"x" * 32)
    for _ in range(5):
        pub_policy.publish(UInt8MultiArray(data=poisoned))
        pub_policy.publish(UInt8MultiArray(data=policy_bytes(_agent(), run_id="rogue", version=10**6)))
        time.sleep(0.05)
    learner_diag = _diagnostics(
        rclpy_context, "sac_robot/learner", lambda d: int(d["rejected_messages"]) >= rejected_before + 10, 30
    )
    assert learner_diag["collectors"] == "1", "only the honest collector's stream was stored"
    collector_diag = _diagnostics(
        rclpy_context, "sac_robot/collector/honest", lambda d: int(d["bad_messages"]) >= 2, 30
    )
    assert collector_diag["policy_version"] == "0", "no rogue weights were taken"
    node.destroy_node()
    assert learner.poll() is None, "the learner survived every bad message"
    assert int(learner_diag["transitions_stored"]) > 0
