# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The launch files and `sac-robot launch` start the same nodes, parameters and remappings.

`launch` and `launch_ros` are not on PyPI, so this test imports the real launch files against
recording stand-ins of those two packages: the stand-ins only note what the launch file asks for
(arguments, Node keyword arguments); the test then compares that with the command lines the CLI runs.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from sac_robot.cli.launcher import node_command, parse_assignments
from sac_robot.core.config import ConfigError
from sac_robot.launch_spec import EXECUTABLES, JOBS, nodes_for

ROOT = Path(__file__).resolve().parents[1]


class _Context:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values


def _recording_launch_modules() -> dict[str, types.ModuleType]:
    launch = types.ModuleType("launch")
    actions = types.ModuleType("launch.actions")
    substitutions = types.ModuleType("launch.substitutions")
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")

    class LaunchDescription(list):
        pass

    class DeclareLaunchArgument:
        def __init__(self, name, default_value=None, description=""):
            self.name, self.default_value, self.description = name, default_value, description

    class OpaqueFunction:
        def __init__(self, function):
            self.function = function

    class Shutdown:
        def __init__(self, reason=""):
            self.reason = reason

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context.values[self.name]

    class Node:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    launch.LaunchDescription = LaunchDescription
    actions.DeclareLaunchArgument, actions.OpaqueFunction, actions.Shutdown = (
        DeclareLaunchArgument,
        OpaqueFunction,
        Shutdown,
    )
    substitutions.LaunchConfiguration = LaunchConfiguration
    ros_actions.Node = Node
    launch.actions, launch.substitutions, launch_ros.actions = actions, substitutions, ros_actions
    return {
        "launch": launch,
        "launch.actions": actions,
        "launch.substitutions": substitutions,
        "launch_ros": launch_ros,
        "launch_ros.actions": ros_actions,
    }


def _launch_file_nodes(job: str, given: dict[str, str], monkeypatch) -> list[dict]:
    for name, module in _recording_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(f"{job}_launch", ROOT / "launch" / f"{job}.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {a.name: a.default_value for a in description if hasattr(a, "default_value")}
    assert set(given) <= set(declared), "every CLI argument is a launch argument too"
    (opaque,) = [a for a in description if hasattr(a, "function")]
    return [n.kwargs for n in opaque.function(_Context({**declared, **given}))]


def _parse_cli(cmd: list[str]) -> dict:
    """Read back module, name, namespace, parameters and remappings from a CLI node command line."""
    assert cmd[1] == "-m" and cmd[3] == "--ros-args"
    out = {"module": cmd[2], "name": None, "namespace": "", "parameters": {}, "remappings": []}
    args = cmd[4:]
    for flag, value in zip(args[::2], args[1::2]):
        key, _, val = value.partition(":=")
        if flag == "-p":
            out["parameters"][key] = yaml.safe_load(val)
        elif key == "__node":
            out["name"] = val
        elif key == "__ns":
            out["namespace"] = val.strip("/")
        else:
            out["remappings"].append((key, val))
    return out


CASES = [
    ("train_sim", {}),
    ("train_sim", {"config": "quadruped", "stand_in": "pybullet", "namespace": "robot1", "seed": "3"}),
    ("train_sim", {"resume": "true", "run_dir": "runs/x", "start_collector": "false"}),
    ("train_hw", {"stand_in": "pybullet", "joint_commands": "/forward_position_controller/commands"}),
    ("train_hw", {"start_learner": "false", "imu": "/imu_broadcaster/imu", "namespace": "a1"}),
    ("train_hw", {"start_collector": "false"}),
    ("deploy", {"policy": "policy.safetensors", "joint_states": "/robot/joint_states"}),
]


@pytest.mark.parametrize(("job", "given"), CASES)
def test_launch_file_and_cli_start_the_same_nodes(job: str, given: dict[str, str], monkeypatch) -> None:
    from_launch = _launch_file_nodes(job, given, monkeypatch)
    from_cli = [_parse_cli(node_command(s)) for s in nodes_for(job, given)]
    assert len(from_launch) == len(from_cli) > 0
    for ln, cli in zip(from_launch, from_cli):
        assert EXECUTABLES[ln["executable"]] == cli["module"]
        assert ln["package"] == "sac_robot"
        assert ln["name"] == cli["name"]
        assert ln["namespace"].strip("/") == cli["namespace"]
        assert ln["parameters"] == [cli["parameters"]]
        assert list(ln["remappings"]) == cli["remappings"]


def test_job_shapes() -> None:
    names = [s.name for s in nodes_for("train_sim", {})]
    assert names == ["stand_in", "learner", "collector"]
    hw = nodes_for("train_hw", {})
    assert [s.name for s in hw] == ["learner", "collector"], "no stand-in on real hardware unless asked"
    assert hw[1].parameters["lockstep"] is False and hw[1].parameters["config"] == "quadruped_hw"
    robot_only = nodes_for("train_hw", {"start_learner": "false"})
    assert [s.name for s in robot_only] == ["collector"]
    learner = nodes_for("train_sim", {"namespace": "r1"})[1]
    assert learner.namespace == "", "the learner stays global so every namespaced collector reaches it"


def test_every_executable_is_a_console_script() -> None:
    setup = (ROOT / "setup.py").read_text()
    scripts = dict(re.findall(r"['\"]([\w-]+)\s*=\s*([\w.]+):main['\"]", setup))
    for executable, module in EXECUTABLES.items():
        assert scripts.get(executable) == module
    assert scripts.get("sac-robot") == "sac_robot.cli.main"
    for job in JOBS:
        assert (ROOT / "launch" / f"{job}.launch.py").is_file()


@pytest.mark.parametrize(
    ("job", "given", "message"),
    [
        ("train_sim", {"stand_ins": "box2d"}, "unknown launch argument"),
        ("train_sim", {"resume": "maybe"}, "resume"),
        ("train_sim", {"stand_in": "gazebo"}, "stand_in"),
        ("deploy", {}, "policy"),
        ("fly", {}, "unknown job"),
    ],
)
def test_bad_arguments_name_the_problem(job: str, given: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        nodes_for(job, given)


def test_assignment_syntax() -> None:
    assert parse_assignments(["config:=a.yaml", "namespace:="]) == {"config": "a.yaml", "namespace": ""}
    with pytest.raises(ConfigError, match="name:=value"):
        parse_assignments(["config=a.yaml"])
