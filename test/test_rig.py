# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The process rig of the tests and benchmarks (sac_robot/testing/rig.py), without ROS: command lines, the
isolated environment, and process groups that are started in sessions of their own and stopped whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sac_robot.testing import rig

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def wait_for(done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_node_cmd_formats_parameters_and_remaps() -> None:
    cmd = rig.node_cmd(
        "collector_node",
        {
            "lockstep": True,
            "eval": False,
            "rate": 50.0,
            "seeds": [1, 2],
            "flags": [True, False],
            "cfg": Path("/c.yaml"),
        },
        name="collector",
        namespace="robot1",
    )
    assert cmd[:3] == [sys.executable, "-m", "sac_robot.nodes.collector_node"]
    assert cmd[3:] == [
        "--ros-args",
        *("-r", "__node:=collector", "-r", "__ns:=/robot1"),
        *("-p", "lockstep:=true", "-p", "eval:=false", "-p", "rate:=50.0"),
        *("-p", "seeds:=[1, 2]", "-p", "flags:=[true, false]", "-p", "cfg:=/c.yaml"),
    ]
    # a script instead of the module; strings are passed as given (a caller's own number format)
    assert rig.node_cmd("x", {"control_rate_hz": "20"}, script="/tmp/patched.py") == [
        sys.executable,
        "/tmp/patched.py",
        "--ros-args",
        "-p",
        "control_rate_hz:=20",
    ]
    assert rig.node_cmd("box2d_stand_in") == [sys.executable, "-m", "sac_robot.nodes.box2d_stand_in", "--ros-args"]
    assert rig.cli_cmd("arm", "--timeout", "40") == [
        sys.executable,
        "-m",
        "sac_robot.cli.main",
        "arm",
        "--timeout",
        "40",
    ]


def test_ros_env_is_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROS_STATIC_PEERS", "192.0.2.1")  # (monkeypatch restores all three afterwards)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    monkeypatch.setenv("ROS_DOMAIN_ID", os.environ.get("ROS_DOMAIN_ID", "0"))
    env = rig.ros_env(57)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["ROS_DOMAIN_ID"] == "57" and env["PYTHONUNBUFFERED"] == "1"
    assert "ROS_STATIC_PEERS" not in env
    assert os.environ["ROS_STATIC_PEERS"] == "192.0.2.1"  # a copy: this process is left alone
    private = rig.private_ros_env(58)  # ...unless asked
    assert os.environ["ROS_DOMAIN_ID"] == private["ROS_DOMAIN_ID"] == "58"
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST" and "ROS_STATIC_PEERS" not in os.environ
    assert 201 <= rig.default_domain_id() <= 230


def test_rig_imports_without_ros() -> None:
    code = "import sys, sac_robot.testing.rig; sys.exit(any(m.split('.')[0] == 'rclpy' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_stop_ends_the_process_and_its_group(tmp_path: Path) -> None:
    with rig.ProcessGroup(None, tmp_path) as procs:
        proc = procs.start("sleeper", SLEEP)
        assert os.getpgid(proc.pid) == proc.pid  # a session, so a process group, of its own
        procs.check_alive("sleeper")
        codes = procs.stop("sleeper")
    assert codes["sleeper"] is not None and proc.poll() is not None
    assert not rig.group_alive(proc.pid)
    procs.check_alive()  # a stopped process is no longer expected to run


def test_close_stops_everything(tmp_path: Path) -> None:
    procs = rig.ProcessGroup(None, tmp_path)
    first, second = procs.start("a", SLEEP), procs.start("b", SLEEP)
    stray = procs.reaper.spawn(SLEEP, stdout=subprocess.DEVNULL)  # not named, still the group's own reaper's
    procs.close()
    assert all(p.poll() is not None for p in (first, second, stray))
    assert not any(rig.group_alive(p.pid) for p in (first, second, stray))


def test_a_process_that_exits_early_raises_with_its_log(tmp_path: Path) -> None:
    with rig.ProcessGroup(None, tmp_path) as procs:
        procs.start("sleeper", SLEEP)
        proc = procs.start("crasher", [sys.executable, "-c", "print('the last words'); raise SystemExit(3)"])
        proc.wait(timeout=60)
        assert procs.dead() == {"crasher": 3}
        with pytest.raises(rig.ProcessExited, match=r"(?s)exited early: \{'crasher': 3\}.*the last words"):
            procs.check_alive("sleeper", "crasher")
        procs.check_alive("sleeper")
        assert (tmp_path / "crasher.log").read_text().strip() == "the last words"


def test_run_returns_code_and_output_or_stops_at_the_timeout(tmp_path: Path) -> None:
    with rig.ProcessGroup(None, tmp_path) as procs:
        assert procs.run("hello", [sys.executable, "-c", "print('hi')"], timeout_s=60) == (0, "hi\n")
        code, _ = procs.run("slow", SLEEP, timeout_s=0.5)
        assert code is None and procs.procs["slow"].poll() is not None
        procs.check_alive()  # commands run to completion are not expected to keep running


def test_sigint_then_sigterm_then_sigkill(tmp_path: Path) -> None:
    deaf = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    with rig.ProcessGroup(None, tmp_path, grace_s=0.3) as procs:
        proc = procs.start("deaf", [sys.executable, "-c", deaf])
        wait_for(lambda: "ready" in procs.log("deaf"))
        assert procs.stop("deaf") == {"deaf": -signal.SIGTERM}
        assert proc.returncode == -signal.SIGTERM


def test_children_left_in_the_group_are_killed(tmp_path: Path) -> None:
    orphaner = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
    reaper = rig.Reaper()
    proc = reaper.spawn([sys.executable, "-c", orphaner])
    proc.wait(timeout=60)  # the leader is gone, its child lives on in the group
    assert rig.group_alive(proc.pid)
    reaper.stop(proc)
    wait_for(lambda: not rig.group_alive(proc.pid), 5.0)


def test_a_launchers_nodes_in_their_own_sessions_are_killed(tmp_path: Path) -> None:
    launcher = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
        "time.sleep(60)"
    )
    with rig.ProcessGroup(None, tmp_path) as procs:
        proc = procs.start("launch", [sys.executable, "-c", launcher], launcher=True)
        wait_for(lambda: bool(rig.session_children(proc.pid)))
        (node,) = rig.session_children(proc.pid)
        assert os.getpgid(node) == node  # out of the launcher's group: stopping that group does not reach it
        procs.stop("launch")
        wait_for(lambda: not rig.group_alive(node), 5.0)


def test_kill_is_a_crash(tmp_path: Path) -> None:
    with rig.ProcessGroup(None, tmp_path) as procs:
        procs.start("learner", SLEEP)
        assert procs.kill("learner") == -signal.SIGKILL
        procs.start("learner", SLEEP, log="learner_1")  # restarted under its name, its log beside the first
        assert procs.dead() == {}
        assert (tmp_path / "learner.log").exists() and procs.log_path("learner") == tmp_path / "learner_1.log"


def test_spin_until_checks_and_names_what_it_waited_for() -> None:
    class Executor:
        spins = 0

        def spin_once(self, timeout_sec: float) -> None:
            self.spins += 1
            time.sleep(timeout_sec)

    executor, checks = Executor(), []
    rig.spin_until(executor, lambda: executor.spins >= 3, 10.0, "three spins", check=lambda: checks.append(1))
    assert executor.spins == 3 and len(checks) == 3
    with pytest.raises(TimeoutError, match=r"(?s)waiting for Godot\nstill no Godot"):
        rig.spin_until(executor, lambda: False, 0.05, "Godot", details=lambda: "still no Godot", spin_s=0.01)


def test_write_config_applies_dotted_overrides(tmp_path: Path) -> None:
    path = rig.write_config("quadruped_hw", tmp_path / "hw.yaml", {"sac.batch_size": 64, "robot.reset.settle_s": 0.3})
    cfg = yaml.safe_load(path.read_text())
    assert cfg["sac"]["batch_size"] == 64 and cfg["robot"]["reset"]["settle_s"] == 0.3
    assert cfg["robot"]["control_rate_hz"]  # the rest as it was
