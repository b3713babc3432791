# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""package.xml (what rosdep installs on a ROS machine) and ros-venv-requirements.txt (what a ROS user
pip-installs into a venv) together are exactly setup.py's dependencies: nothing missing on either side."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.jazzy  # also runs in the Jazzy leg, with Ubuntu 24.04's libraries

REPO = Path(__file__).resolve().parents[1]
# pip distribution → the rosdep key whose Ubuntu 24.04 apt package provides it in a usable version.
APT_KEYS = {
    "numpy": "python3-numpy",
    "pyyaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "imageio": "python3-imageio",
}
# ROS packages that have no wheel: needed only for `ros2 launch`, which a ROS installation brings.
ROS_ONLY = {"launch", "launch_ros"}


def setup_lists() -> dict[str, list[str]]:
    """install_requires and extras_require of setup.py, read from its source."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    kw = {k.arg: k.value for k in call.keywords}
    out = {"install_requires": ast.literal_eval(kw["install_requires"])}
    out.update(ast.literal_eval(kw["extras_require"]))
    return out


def name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def exec_depends() -> list[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return [e.text.strip() for e in root.iter("exec_depend")]


def venv_requirements() -> list[str]:
    lines = (REPO / "ros-venv-requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_runtime_dependency_is_declared_once_for_a_ros_machine() -> None:
    required = setup_lists()["install_requires"]
    keys = [k for k in exec_depends() if k.startswith("python3-")]
    venv = venv_requirements()
    from_apt = {dist for dist, key in APT_KEYS.items() if key in keys}
    for requirement in required:
        in_venv = requirement in venv
        assert (name(requirement) in from_apt) != in_venv, (
            f"{requirement}: must come from exactly one of package.xml ({APT_KEYS.get(name(requirement))}) "
            "and ros-venv-requirements.txt"
        )
    assert sorted(venv) == sorted(r for r in required if r in venv), "ros-venv-requirements.txt lists extra packages"
    unknown = [k for k in keys if k not in APT_KEYS.values()]
    assert not unknown, f"package.xml keys with no install_requires entry: {unknown}"
    assert sorted(from_apt) == sorted(name(r) for r in required if name(r) in APT_KEYS)


def test_ros_packages_match_the_ros_extra() -> None:
    """Each ROS exec_depend comes from a distribution, or from the 'ros' extra's PyPI wheel of the same name."""
    wheels = {name(r).removeprefix("ros-").replace("-", "_") for r in setup_lists()["ros"]}
    ros = {k for k in exec_depends() if not k.startswith("python3-")}
    assert wheels - {"rmw_fastrtps_cpp"} == ros - ROS_ONLY  # the rmw is a distribution's default, a wheel here


def test_license_file_is_the_one_package_xml_names() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.findtext("license") == "Apache-2.0"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
