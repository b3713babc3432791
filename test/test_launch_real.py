# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""All three launch files, run by the real `launch` and `launch_ros` from a colcon install space, as
`ros2 launch sac_robot <job>.launch.py name:=value` runs them:

* train_sim: trains to a small total_steps and ends by itself with the policy and a checkpoint written; its
  nodes have the same parameters as under `sac-robot launch` (both come from sac_robot.launch_spec), and
  SIGINT stops either launcher's job with the learner's final checkpoint
* train_hw stand_in:=pybullet: armed with `sac-robot arm`, collects; SIGINT to the launch process stops every
  node, the learner's final checkpoint and policy written, nothing left running
* deploy policy:=<what `sac-robot train --config quadruped_hw` wrote>: the policy node takes the file as it
  is and drives the emulated robot; SIGINT stops it cleanly

The launcher is `ros2 launch` where a ROS 2 installation provides it, otherwise ../shared/ros2-launch
(the unmodified Jazzy launch libraries, installed by scripts/setup, and its ros2_launch.py, which does what
`ros2 launch` does). With neither the test skips and says how to enable it; CI (SAC_ROBOT_REQUIRE_LAUNCH=1,
set by .ci/run) fails instead. Parameters are asked from the running nodes (their get_parameters service).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_colcon_build import ColconInstall, build_workspace

from sac_robot.launch_spec import nodes_for

pytestmark = [pytest.mark.ros, pytest.mark.colcon, pytest.mark.slow, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[1]
SHARED_LAUNCH = REPO.parent / "shared" / "ros2-launch"
ENABLE = (
    "the real launch libraries are needed: source a ROS 2 installation (ros2 launch), or put the shared "
    "ros2-launch folder at ../shared/ros2-launch and run ./scripts/setup (it installs launch and launch_ros)"
)
STARTUP_S = 90.0  # torch, pybullet and rclpy imports on a busy 2-core machine
STOP_S = 150.0  # the learner's final checkpoint has LEARNER_STOP_TIMEOUT_S (120 s); far less is needed here


def launch_command() -> list[str]:
    """`ros2 launch`, or the shared libraries' equivalent; skip (fail in CI) when neither exists."""
    ros2 = shutil.which("ros2")
    if ros2 and subprocess.run([ros2, "launch", "-h"], capture_output=True, check=False).returncode == 0:
        return [ros2, "launch"]
    runner = SHARED_LAUNCH / "ros2_launch.py"
    missing = []
    if not runner.is_file():
        missing.append(f"{runner} not found")
    try:
        import launch_ros  # noqa: F401

        import launch  # noqa: F401
    except ImportError as err:
        missing.append(f"cannot import {err.name}")
    if missing:
        why = f"{'; '.join(missing)}: {ENABLE}"
        if os.environ.get("SAC_ROBOT_REQUIRE_LAUNCH") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return [sys.executable, str(runner)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> ColconInstall:
    launch_command()  # skip or fail before building
    return build_workspace(tmp_path_factory.mktemp("launch_ws"))


def query_parameters(listener: Any, expected: dict[str, dict[str, object]], timeout_s: float) -> dict[str, dict]:
    """Each running node's values of the expected parameters, asked through its get_parameters service (what
    `ros2 param get` does): {'/learner': {'seed': 0, ...}}."""
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    out: dict[str, dict] = {}
    for node, params in expected.items():
        client = listener.node.create_client(GetParameters, f"{node}/get_parameters")
        listener.spin_until(client.service_is_ready, timeout_s, f"{node}/get_parameters")
        future = client.call_async(GetParameters.Request(names=list(params)))
        listener.spin_until(future.done, timeout_s, f"the answer of {node}/get_parameters")
        values = future.result().values
        out[node] = {name: parameter_value_to_python(v) for name, v in zip(params, values)}
        listener.node.destroy_client(client)
    return out


def spec_parameters(job: str, args: dict[str, str]) -> dict[str, dict[str, object]]:
    """What launch_spec says each node of the job gets: {'/ns/name': {parameter: value}}."""
    out = {}
    for spec in nodes_for(job, args):
        ns = f"/{spec.namespace.strip('/')}" if spec.namespace else ""
        out[f"{ns}/{spec.name}"] = dict(spec.parameters)
    return out


class Launch:
    """One launch process in its own process group, output in a log file."""

    def __init__(self, proc_reaper: Any, cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = proc_reaper.spawn(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, done: Callable[[], bool], timeout_s: float, what: str, listener: Any) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.proc.poll() is not None and not done():
                pytest.fail(f"launch exited ({self.proc.returncode}) while waiting for {what}:\n{self.text()[-6000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}:\n{self.text()[-6000:]}")
            listener.executor.spin_once(timeout_sec=0.1)

    def interrupt_and_wait(self) -> int:
        """SIGINT to the launch process alone (its nodes must be stopped by it), then wait."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"launch still running {STOP_S:.0f} s after SIGINT:\n{self.text()[-6000:]}")

    def left_running(self) -> list[str]:
        """Processes still in the launch's process group (its nodes) after it exited."""
        pgid, left = self.proc.pid, []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                left.append(text.split(")")[0] + ")")
        return left


def assert_parameters(got: dict[str, dict], expected: dict[str, dict[str, object]], launcher: str) -> None:
    for node, params in expected.items():
        for key, value in params.items():
            assert got[node][key] == value, f"{launcher}: {node} {key} = {got[node][key]!r}, launch_spec says {value!r}"


def test_train_sim_gives_the_spec_parameters_under_both_launchers(
    workspace: ColconInstall, ros_env: dict[str, str], proc_reaper: Any, listener: Any, tmp_path: Path
) -> None:
    """Asked while each job runs (a total_steps it will not reach), then stopped with SIGINT."""
    args = {"total_steps": "1000000", "seed": "3"}
    results = {}
    for launcher in ("ros2 launch", "sac-robot launch"):
        run_dir = tmp_path / launcher.replace(" ", "_")
        given = {**args, "run_dir": str(run_dir)}
        watch = listener(f"watch_{launcher.split()[0].replace('-', '_')}")
        assignments = [f"{k}:={v}" for k, v in given.items()]
        if launcher == "ros2 launch":
            cmd = [*launch_command(), "sac_robot", "train_sim.launch.py", *assignments]
        else:
            cmd = [str(workspace.libexec / "sac-robot"), "launch", "train_sim", *assignments]
        run = Launch(proc_reaper, cmd, workspace.env(ros_env), tmp_path, tmp_path / f"{run_dir.name}.log")
        expected = spec_parameters("train_sim", given)
        got = query_parameters(watch, expected, STARTUP_S)
        assert_parameters(got, expected, launcher)
        results[launcher] = got
        assert run.interrupt_and_wait() == 0, run.text()[-6000:]
        assert "final checkpoint written" in run.text(), run.text()[-6000:]
        assert not run.left_running(), run.left_running()
    # Both launchers gave every node the same parameters (run_dir aside: each run had its own).
    for got in results.values():
        got["/learner"].pop("run_dir")
    assert results["ros2 launch"] == results["sac-robot launch"]


def test_train_sim_trains_to_total_steps_and_ends_by_itself(
    workspace: ColconInstall, ros_env: dict[str, str], proc_reaper: Any, listener: Any, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    cmd = [*launch_command(), "sac_robot", "train_sim.launch.py", "total_steps:=1500", f"run_dir:={run_dir}"]
    run = Launch(proc_reaper, cmd, workspace.env(ros_env), tmp_path, tmp_path / "train_sim.log")
    proc = run.proc
    run.wait_for(lambda: proc.poll() is not None, STARTUP_S + 120, "the run to end", listener("watch_end"))
    assert proc.returncode == 0, run.text()[-6000:]
    assert (run_dir / "policy.safetensors").is_file(), run.text()[-4000:]
    assert list((run_dir / "checkpoints").glob("*.safetensors")), "no checkpoint written"
    assert "Traceback" not in run.text(), run.text()[-6000:]
    assert not run.left_running(), run.left_running()


def test_train_hw_armed_then_sigint_stops_every_node_with_the_final_checkpoint(
    workspace: ColconInstall, ros_env: dict[str, str], proc_reaper: Any, listener: Any, tmp_path: Path
) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    run_dir = tmp_path / "run_hw"
    given = {"stand_in": "pybullet", "run_dir": str(run_dir), "control_priority": "0"}
    watch = listener("hw_watch")
    steps: list[int] = []

    def on_diag(msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith("sac_robot/collector/"):
                steps.append(int({kv.key: kv.value for kv in status.values}["transitions"]))

    watch.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    cmd = [*launch_command(), "sac_robot", "train_hw.launch.py", *(f"{k}:={v}" for k, v in given.items())]
    env = workspace.env(ros_env)
    run = Launch(proc_reaper, cmd, env, tmp_path, tmp_path / "train_hw.log")
    expected = spec_parameters("train_hw", given)
    assert_parameters(query_parameters(watch, expected, STARTUP_S), expected, "ros2 launch")
    arm = subprocess.run(
        [str(workspace.libexec / "sac-robot"), "arm", "--timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert arm.returncode == 0, arm.stdout + arm.stderr + run.text()[-4000:]
    # The stand-up routine, then real-time steps at 20 Hz; a batch reaches the learner about every second.
    run.wait_for(lambda: bool(steps) and steps[-1] >= 40, STARTUP_S, "40 collected transitions", watch)
    code = run.interrupt_and_wait()
    text = run.text()
    assert code == 0, text[-6000:]
    assert "final checkpoint written" in text, text[-6000:]
    assert list((run_dir / "checkpoints").glob("*.safetensors")) and (run_dir / "policy.safetensors").is_file()
    assert "Traceback" not in text, text[-6000:]
    assert not run.left_running(), run.left_running()


def test_deploy_runs_the_policy_that_training_wrote(
    workspace: ColconInstall, ros_env: dict[str, str], proc_reaper: Any, listener: Any, tmp_path: Path
) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray

    env = workspace.env(ros_env)
    train_dir = tmp_path / "trained"
    train = subprocess.run(
        [str(workspace.libexec / "sac-robot"), "train", "--config", "quadruped_hw", "--steps", "60"]
        + ["--run-dir", str(train_dir), "--quiet", "--device", "cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert train.returncode == 0, train.stderr[-4000:]
    given = {"policy": str(train_dir / "policy.safetensors"), "stand_in": "pybullet", "control_priority": "0"}
    watch = listener("deploy_watch")
    commands: list[Any] = []
    diags: list[dict[str, str]] = []
    watch.node.create_subscription(Float64MultiArray, "joint_commands", commands.append, 10)

    def on_diag(msg: Any) -> None:
        for status in msg.status:
            if status.name == "sac_robot/policy_node":
                diags.append({kv.key: kv.value for kv in status.values})

    watch.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    cmd = [*launch_command(), "sac_robot", "deploy.launch.py", *(f"{k}:={v}" for k, v in given.items())]
    run = Launch(proc_reaper, cmd, env, tmp_path, tmp_path / "deploy.log")
    run.wait_for(lambda: len(commands) >= 40, STARTUP_S, "40 commands from the policy node", watch)
    run.wait_for(lambda: bool(diags) and int(diags[-1]["steps"]) > 0, 15.0, "policy node diagnostics", watch)
    assert diags[-1]["estop"] == "clear" and diags[-1]["qos_incompatible"] == "none"
    expected = spec_parameters("deploy", given)
    assert_parameters(query_parameters(watch, expected, 30.0), expected, "ros2 launch")
    code = run.interrupt_and_wait()
    assert code == 0, run.text()[-6000:]
    assert "refusing to start" not in run.text() and "Traceback" not in run.text(), run.text()[-6000:]
    assert not run.left_running(), run.left_running()
