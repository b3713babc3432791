# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Test-session isolation for ROS 2 and headless runs.

Set at import, before any test module can import rclpy:

* ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``: DDS discovery never leaves the loopback
  interface (without it Fast DDS multicasts on the machine's external interface).
* ``ROS_DOMAIN_ID``: one per test session, so that concurrent sessions on one machine don't see
  each other's nodes; the ``ros_env`` fixture gives each test its own on top of that.
* ``MPLBACKEND=Agg``, ``SDL_VIDEODRIVER=dummy``: no display needed.
* ``PYTHONUNBUFFERED=1``: child processes' logs arrive as they are written.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sac_robot.testing import rig as rig_module
from sac_robot.testing.rig import Reaper

# Domain IDs 100-199. (IDs above 101 put DDS ports into Linux's ephemeral range; Fast DDS moves
# to the next free participant port if one is taken, and nothing here leaves loopback.)
DOMAIN_BASE = 101  # 100 (and below) is left to benchmarks run by hand
DOMAIN_SPAN = 99
SESSION_DOMAIN_ID = DOMAIN_BASE + os.getpid() % DOMAIN_SPAN

# LOCALHOST discovery, the session's domain, PYTHONUNBUFFERED (sac_robot/testing/rig.py), and no display.
ISOLATION_ENV = {**rig_module.isolation_vars(SESSION_DOMAIN_ID), "MPLBACKEND": "Agg", "SDL_VIDEODRIVER": "dummy"}
os.environ.update(ISOLATION_ENV)
# A peers list would widen discovery again; the session is isolated by the settings above.
os.environ.pop("ROS_STATIC_PEERS", None)

_domain_counter = itertools.count(1)


def _next_test_domain() -> int:
    """A domain for one test: distinct from the session's and from the session's other tests (cycling after 99)."""
    offset = next(_domain_counter) % (DOMAIN_SPAN - 1) + 1
    return DOMAIN_BASE + (SESSION_DOMAIN_ID - DOMAIN_BASE + offset) % DOMAIN_SPAN


@pytest.fixture(scope="session", autouse=True)
def _ros_isolation() -> Iterator[None]:
    """Keep the isolation settings in force for the whole session (a test may have changed them)."""
    os.environ.update(ISOLATION_ENV)
    yield


@pytest.fixture
def ros_domain_id() -> int:
    """This test's own ROS_DOMAIN_ID."""
    return _next_test_domain()


@pytest.fixture
def ros_env(ros_domain_id: int) -> dict[str, str]:
    """Environment for a test's subprocesses: the current one, isolated, on this test's domain."""
    env = rig_module.ros_env(ros_domain_id, {**os.environ, **ISOLATION_ENV})
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"  # log lines reach the test's log files as they happen
    return env


@pytest.fixture
def proc_reaper() -> Iterator[Reaper]:
    """``proc_reaper.spawn([...], env=ros_env, ...)``: processes that cannot outlive the test (each in a process
    group of its own, stopped with SIGINT, SIGTERM, then SIGKILL at teardown)."""
    with Reaper() as reaper:
        yield reaper


@pytest.fixture
def rclpy_context(ros_domain_id: int) -> Iterator[Any]:
    """An initialised ``rclpy.context.Context`` on this test's domain, shut down afterwards.

    Pass it on: ``rclpy.create_node('n', context=rclpy_context)``, executors with
    ``context=rclpy_context``. rclpy's SIGINT handler is not installed, so Ctrl-C still stops pytest.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    rclpy.init(context=context, domain_id=ros_domain_id, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield context
    finally:
        context.try_shutdown()


class Listener:  # rclpy is imported lazily: conftest must stay importable for tests that use no ROS
    """A node in the test process (its own context from the rclpy_context fixture) that records messages."""

    def __init__(self, context: Any, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, done: Callable[[], bool], timeout_s: float, what: str, nodes: Any = None) -> None:
        """Spin until ``done()``; ``nodes`` (a rig.ProcessGroup) must stay alive meanwhile, its logs are quoted."""
        check, details = (nodes.check_alive, nodes.logs) if nodes is not None else (None, None)
        rig_module.spin_until(self.executor, done, timeout_s, what, check=check, details=details, spin_s=0.1)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


@pytest.fixture
def listener(rclpy_context: Any) -> Any:
    made: list[Listener] = []

    def make(name: str) -> Listener:
        made.append(Listener(rclpy_context, name))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def rig(rclpy_context: Any, proc_reaper: Reaper, ros_env: dict[str, str], tmp_path: Any) -> Iterator[Any]:
    """Hardware-emulation rig (test/hw_rig.py): node processes, an observer node, synthetic sensors."""
    from hw_rig import make_rig

    yield from make_rig(rclpy_context, proc_reaper, ros_env, tmp_path)
