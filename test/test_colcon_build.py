# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The package builds as a ROS 2 workspace would build it, and its executables start from there.

colcon and ament_package come from PyPI (the 'test' extra); the package's sources are copied into
a temporary workspace, built with ``colcon build``, and the install space is checked: the share/
layout, the ament index marker, the executables in lib/sac_robot/ (where ``ros2 run`` looks), and
nodes that start, log and stop on SIGINT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.colcon, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sac_robot"
# What a ROS workspace checkout of the package holds (the tests and dev tooling are left out).
SOURCES = [
    "package.xml",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "resource",
    PACKAGE,
    "launch",
    "config",
    "urdf",
]
CONSOLE_SCRIPTS = ["sac-robot", "learner_node", "collector_node", "box2d_stand_in", "pybullet_stand_in", "policy_node"]
# Node executables started from the install space, with their arguments.
NODES = {"learner_node": [], "box2d_stand_in": []}
# Installed share/ contents must match the source tree for each of these globs.
SHARE_GLOBS = ["launch/*.launch.py", "config/*.yaml", "config/robots/*.yaml", "urdf/*.urdf"]
# ...and these must not be empty.
REQUIRED_GLOBS = ["config/*.yaml", "config/robots/*.yaml", "urdf/*.urdf"]

NODE_FIRST_LOG_TIMEOUT_S = 60.0  # importing torch and rclpy on a busy 2-core machine
NODE_ALIVE_S = 3.0
NODE_EXIT_TIMEOUT_S = 15.0


def _colcon() -> list[str]:
    exe = Path(sys.executable).with_name("colcon")
    if not exe.exists():
        found = shutil.which("colcon")
        if found is None:
            pytest.fail("colcon not found: install the test extra (./scripts/setup, or pip install -e '.[test]')")
        exe = Path(found)
    return [str(exe)]


class ColconInstall:
    def __init__(self, ws: Path, build_s: float) -> None:
        self.ws = ws
        self.build_s = build_s
        self.prefix = ws / "install" / PACKAGE
        self.share = self.prefix / "share" / PACKAGE
        self.libexec = self.prefix / "lib" / PACKAGE
        purelib = Path(sysconfig.get_path("purelib"))
        self.site_packages = self.prefix / purelib.relative_to(Path(sysconfig.get_path("data")))

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """What sourcing install/setup.bash would add: the install space's Python path and prefix."""
        env = dict(base)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.site_packages), base.get("PYTHONPATH")) if p)
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(self.prefix), base.get("AMENT_PREFIX_PATH")) if p)
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), base.get("PATH", "")))
        return env


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> ColconInstall:
    return build_workspace(tmp_path_factory.mktemp("colcon_ws"))


def build_workspace(ws: Path) -> ColconInstall:
    """Copy the package's sources into ``ws/src`` and ``colcon build`` them as a ROS workspace would."""
    src = ws / "src" / PACKAGE
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "install", "log")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        elif path.is_file():
            shutil.copy2(path, src / name)

    env = dict(os.environ)
    env["COLCON_HOME"] = str(ws / ".colcon")  # no user defaults or mixins
    env.pop("COLCON_DEFAULTS_FILE", None)
    cmd = _colcon() + [
        "--log-base", str(ws / "log"),
        "build",
        "--base-paths", "src",
        "--build-base", str(ws / "build"),
        "--install-base", str(ws / "install"),
        "--event-handlers", "console_direct+", "desktop_notification-", "status-", "terminal_title-",
    ]  # fmt: skip
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=240, check=False)
    build_s = time.monotonic() - start
    assert result.returncode == 0, (
        f"colcon build failed ({result.returncode}):\n{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    )
    print(f"colcon build took {build_s:.1f} s")
    return ColconInstall(ws, build_s)


def test_share_layout(colcon_install: ColconInstall) -> None:
    share = colcon_install.share
    assert (share / "package.xml").is_file()
    index = colcon_install.prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert index.is_file(), "the ament index marker is what get_package_share_directory() finds"
    for pattern in SHARE_GLOBS:
        source = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern))
        installed = sorted(p.relative_to(share).as_posix() for p in share.glob(pattern))
        assert installed == source, f"share/{PACKAGE}/{pattern}"
        if pattern in REQUIRED_GLOBS:
            assert installed, f"nothing installed for {pattern}"
    # colcon's environment hooks: `source install/setup.bash` must find the package.
    assert (colcon_install.ws / "install" / "setup.bash").is_file()
    assert (colcon_install.share / "package.bash").is_file()


def test_executables_in_lib(colcon_install: ColconInstall) -> None:
    for name in CONSOLE_SCRIPTS:
        exe = colcon_install.libexec / name
        assert exe.is_file(), f"lib/{PACKAGE}/{name} missing (setup.cfg script dirs)"
        assert os.access(exe, os.X_OK), f"lib/{PACKAGE}/{name} not executable"
    assert (colcon_install.site_packages / PACKAGE / "__init__.py").is_file()


def test_installed_package_is_used(colcon_install: ColconInstall, ros_env: dict[str, str]) -> None:
    """From the install space: the installed modules load, and packaged files resolve via the ament index."""
    code = (
        "import sac_robot; from sac_robot.core.config import packaged_config_dir; "
        "print(sac_robot.__file__); print(packaged_config_dir())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=colcon_install.ws,
        env=colcon_install.env(ros_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    module_file, config_dir = result.stdout.split()
    assert Path(module_file).is_relative_to(colcon_install.site_packages)
    assert Path(config_dir).resolve() == (colcon_install.share / "config").resolve()


def test_cli_help_from_install(colcon_install: ColconInstall, ros_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(colcon_install.libexec / "sac-robot"), "--help"],
        cwd=colcon_install.ws,
        env=colcon_install.env(ros_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout


@pytest.mark.ros
@pytest.mark.parametrize("node", sorted(NODES))
def test_node_starts_and_stops(colcon_install: ColconInstall, ros_env, proc_reaper, tmp_path, node: str) -> None:
    if not (ROOT / PACKAGE / "nodes" / f"{node}.py").is_file():
        pytest.skip(f"{PACKAGE}/nodes/{node}.py does not exist yet")
    log_path = tmp_path / f"{node}.log"
    with open(log_path, "wb") as log:
        proc = proc_reaper.spawn(
            [str(colcon_install.libexec / node), *NODES[node]],
            cwd=tmp_path,
            env=colcon_install.env(ros_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def output() -> str:
        return log_path.read_text(errors="replace")

    deadline = time.monotonic() + NODE_FIRST_LOG_TIMEOUT_S
    while not output().strip():
        assert proc.poll() is None, f"{node} exited with {proc.returncode} before logging:\n{output()}"
        assert time.monotonic() < deadline, f"{node} logged nothing in {NODE_FIRST_LOG_TIMEOUT_S:.0f} s"
        time.sleep(0.1)
    time.sleep(NODE_ALIVE_S)
    assert proc.poll() is None, f"{node} exited with {proc.returncode}:\n{output()}"

    os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(timeout=NODE_EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{node} still running {NODE_EXIT_TIMEOUT_S:.0f} s after SIGINT:\n{output()}")
    assert code in (0, 130, -signal.SIGINT), f"{node} exit code {code} after SIGINT:\n{output()}"
    assert "Traceback" not in output(), f"{node} did not stop cleanly:\n{output()}"
