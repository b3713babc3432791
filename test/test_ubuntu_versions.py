# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Every module imports, with whatever library versions this venv has. In the Jazzy leg of ./scripts/test
(SAC_ROBOT_EXPECT_NOBLE=1) the venv holds what a ROS 2 Jazzy machine on Ubuntu 24.04 has: rclpy 7.1.6 and
apt's numpy, PyYAML and matplotlib (scripts/noble-constraints.txt); checked here, so that leg cannot pass on
newer libraries by mistake. Config validation (test_config.py) and the ROS tests run in the same leg."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
from pathlib import Path

import pytest

import sac_robot

pytestmark = pytest.mark.jazzy
REPO = Path(__file__).resolve().parents[1]


def noble_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "scripts" / "noble-constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_every_module_imports() -> None:
    names = [m.name for m in pkgutil.walk_packages(sac_robot.__path__, "sac_robot.")]
    assert "sac_robot.nodes.collector_node" in names
    for name in names:
        importlib.import_module(name)


def test_jazzy_leg_runs_ubuntu_noble_library_versions() -> None:
    if os.environ.get("SAC_ROBOT_EXPECT_NOBLE") != "1":
        pytest.skip("checked in the Jazzy leg of ./scripts/test (SAC_ROBOT_EXPECT_NOBLE=1)")
    for dist, version in noble_pins().items():
        assert importlib.metadata.version(dist) == version, dist
    assert importlib.metadata.version("ros-rclpy") == "7.1.6"  # Jazzy's rclpy
