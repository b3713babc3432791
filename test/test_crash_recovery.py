# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""No transition lost: the learner is SIGKILLed mid-run and restarted with resume; every transition the
collector produced ends up in the persisted replay store exactly once (counted from what was ever
persisted, not from what a ring buffer still holds)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import UInt8MultiArray
from test_ros_e2e import Nodes, check_chunks, learner_diagnostics, node_cmd, write_config

from sac_robot.core.wire import decode_transitions
from sac_robot.nodes import ros_io as io


@pytest.mark.timeout(300)
def test_learner_killed_and_restarted_loses_nothing(
    tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any, listener: Any
) -> None:
    config = write_config(tmp_path, total_steps=10**6)  # the learner never stops on its own here
    run_dir = tmp_path / "run"
    nodes = Nodes(proc_reaper, ros_env, tmp_path)
    learner_cmd = node_cmd("learner_node", "learner", config=config, run_dir=run_dir)
    nodes.start("learner", learner_cmd)
    nodes.start("stand_in", node_cmd("box2d_stand_in", "stand_in", lockstep=True))
    nodes.start("collector", node_cmd("collector_node", "collector", config=config, collector_id="robot"))

    watch = listener("watch")
    sent: dict[str, int] = {}  # highest sequence number the collector ever sent, per stream
    diag: dict[str, str] = {}

    def on_transitions(msg: UInt8MultiArray) -> None:
        b = decode_transitions(bytes(msg.data))
        key = f"{b.collector_id}|{b.epoch}"
        sent[key] = max(sent.get(key, -1), b.last_seq)

    def on_diag(msg: DiagnosticArray) -> None:
        d = learner_diagnostics(msg)
        if d is not None:
            diag.clear()
            diag.update(d)

    watch.node.create_subscription(UInt8MultiArray, io.TRANSITIONS, on_transitions, io.TRANSITIONS_QOS)
    watch.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    watch.spin_until(lambda: int(diag.get("transitions_stored", 0)) > 800, 120, "transitions stored", nodes)

    # Kill the learner the hardest way, mid-stream, while the collector keeps producing.
    nodes.procs["learner"].send_signal(signal.SIGKILL)
    nodes.procs["learner"].wait(timeout=10)
    before_restart = max(sent.values())
    time.sleep(3.0)
    diag.clear()
    nodes.start("learner", [*learner_cmd, "-p", "resume:=true"])
    watch.spin_until(
        lambda: diag and int(diag["transitions_stored"]) > before_restart + 300, 120, "training after restart", nodes
    )
    # Stop the robot side, let the learner acknowledge what it has, then stop the learner.
    nodes.stop("stand_in", "collector")
    end = time.monotonic() + 6.0
    while time.monotonic() < end:
        watch.executor.spin_once(timeout_sec=0.1)
    codes = nodes.stop("learner")
    assert codes["learner"] == 0, nodes.logs()

    buffer, acks = check_chunks(run_dir)
    (stream,) = sent
    assert acks[stream] == sent[stream], f"persisted up to {acks[stream]}, the collector sent up to {sent[stream]}"
    assert buffer.total == sent[stream] + 1, "every transition persisted exactly once, none twice"
    assert not list((run_dir / "replay").glob("*.corrupt"))
