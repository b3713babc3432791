# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The layering of docs/architecture.md holds: core → robot → training → nodes → entry, each importing only
the layers before it, and only nodes and entry import ROS (rclpy and the message packages). Every import in
every module counts, those inside functions too.

sac_robot.testing (the process rig of the tests and benchmarks) sits beside nodes and entry: it may use the
layers below it and ROS, but ROS only inside functions (it imports where rclpy is not installed), and no
module of the package imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.jazzy

PACKAGE = Path(__file__).resolve().parents[1] / "sac_robot"
# Module prefixes per layer, in order: a module may import its own layer and the ones before it.
LAYERS = (
    ("core", ("sac_robot.core", "sac_robot.policy_runtime")),
    ("robot", ("sac_robot.robot", "sac_robot.sim", "sac_robot.envs")),
    ("training", ("sac_robot.training",)),
    ("nodes", ("sac_robot.nodes",)),
    ("testing", ("sac_robot.testing",)),
    ("entry", ("sac_robot.cli", "sac_robot.launch_spec", "sac_robot.launch_description", "sac_robot")),
)
ROS = ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_srvs", "diagnostic_msgs")
ROS += ("rosgraph_msgs", "lifecycle_msgs", "rcl_interfaces", "builtin_interfaces", "launch", "launch_ros")
ROS_LAYERS = {"nodes", "testing", "entry"}
TESTING = "sac_robot.testing"


def layer_of(module: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module}: in no layer of docs/architecture.md")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if node.module == "sac_robot"]
    return found


def test_no_import_runs_up_a_layer() -> None:
    upward = []
    for name, path in sorted(modules().items()):
        if name == "sac_robot":
            continue
        mine = layer_of(name)
        for imported in imports(path):
            if imported.startswith("sac_robot.") and layer_of(imported) > mine:
                upward.append(f"{name} ({LAYERS[mine][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})")
    assert not upward, "imports up the layers:\n  " + "\n  ".join(upward)


def test_only_nodes_and_entry_import_ros() -> None:
    found = []
    for name, path in sorted(modules().items()):
        layer = LAYERS[layer_of(name)][0]
        if layer in ROS_LAYERS:
            continue
        found += [f"{name} ({layer}) imports {i}" for i in imports(path) if i.split(".")[0] in ROS]
    assert not found, "ROS below the nodes layer:\n  " + "\n  ".join(found)


def test_nothing_in_the_package_imports_the_testing_rig() -> None:
    found = []
    for name, path in sorted(modules().items()):
        if name == TESTING or name.startswith(TESTING + "."):
            continue
        found += [f"{name} imports {i}" for i in imports(path) if i == TESTING or i.startswith(TESTING + ".")]
    assert not found, "the package imports its test helpers:\n  " + "\n  ".join(found)


def test_testing_imports_ros_only_inside_functions() -> None:
    """``import sac_robot.testing.rig`` works without rclpy: ROS imports only in function bodies."""
    found = []
    for name, path in sorted(modules().items()):
        if not (name == TESTING or name.startswith(TESTING + ".")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom | ast.If | ast.Try)])
        for node in ast.walk(top):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += [f"{name} imports {n} at module level" for n in names if n.split(".")[0] in ROS]
    assert not found, "\n  ".join(found)
