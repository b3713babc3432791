# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""One way to run a node: init, spin, and on Ctrl-C or SIGTERM a clean shutdown that runs the node's
`close()` (final checkpoint, safe command) before the process exits, so launchers leave no orphans."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from sac_robot.nodes.ros_io import require_local_discovery


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def make_executor(threads: int = 1):
    """SAC_ROBOT_EXECUTOR=events|single|multi picks rclpy's executor. Default: events (rclpy's C++
    EventsExecutor: no wait set rebuilt per message, 1.5x the lockstep rate of SingleThreadedExecutor here,
    docs/benchmarks.md); single is the fallback should the experimental one misbehave."""
    kind = os.environ.get("SAC_ROBOT_EXECUTOR", "events" if threads == 1 else "multi")
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    return MultiThreadedExecutor(threads) if kind == "multi" else SingleThreadedExecutor()


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    require_local_discovery()
    # rclpy's own handlers would shut the context down before close() runs (no final transitions, no
    # safe command); instead SIGINT raises KeyboardInterrupt (Python's default) and SIGTERM does the same.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Explicitly: a process started in the background by a non-interactive shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    node = None
    try:
        node = factory()
        executor = make_executor(threads)
        executor.add_node(node)
        never = Future()
        while True:  # return to Python at least every 0.2 s so a signal is seen even in a node with no timers
            executor.spin_until_future_complete(never, timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
