# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""One way to run a node: init, spin, and on Ctrl-C or SIGTERM a clean shutdown that runs the node's
`close()` (final checkpoint, safe command) before the process exits, so launchers leave no orphans."""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.lifecycle import LifecyclePublisher
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from sac_robot.nodes.ros_io import require_local_discovery
from sac_robot.nodes.scheduling import apply_scheduling


def entities(node: Node) -> set:
    """Everything a node has made: its publishers, subscriptions, services, clients and timers."""
    return {*node.publishers, *node.subscriptions, *node.services, *node.clients, *node.timers}


def destroy_entities(node: Node, keep: set) -> None:
    """Destroy what the node made, except ``keep`` (a lifecycle node's cleanup undoing its configure)."""
    for pub in set(node.publishers) - keep:
        (node.destroy_lifecycle_publisher if isinstance(pub, LifecyclePublisher) else node.destroy_publisher)(pub)
    for sub in set(node.subscriptions) - keep:
        node.destroy_subscription(sub)
    for srv in set(node.services) - keep:
        node.destroy_service(srv)
    for client in set(node.clients) - keep:
        node.destroy_client(client)
    for timer in set(node.timers) - keep:
        node.destroy_timer(timer)


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


class CallbackGuard:
    """Keeps an exception from escaping a callback into the executor: it is stored, the spin loop stops, and
    it is raised again in plain Python, so close() runs (final transitions, safe command) and the traceback
    is printed. Needed for rclpy's C++ EventsExecutor, where an escaping exception can crash the process."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.stop = Future()

    def request_stop(self, signum: int, frame: object) -> None:
        """SIGINT/SIGTERM while spinning: end the spin loop; run_node then closes the node."""
        if not self.stop.done():
            self.stop.set_result(None)

    def guard(self, node: Node) -> None:
        """Wrap every callback not wrapped yet (a lifecycle transition may have created new entities)."""
        for entity in (*node.subscriptions, *node.timers, *node.services):
            if not getattr(entity.callback, "_sac_guarded", False):
                entity.callback = self._wrap(entity.callback)

    def _wrap(self, callback: Callable) -> Callable:
        @functools.wraps(callback)  # keeps the signature rclpy inspects (a timer callback may take TimerInfo)
        def guarded(*args: object) -> object:
            try:
                return callback(*args)
            except BaseException as err:  # noqa: BLE001 - re-raised by run_node
                if self.error is None:
                    self.error = err
                if not self.stop.done():
                    self.stop.set_result(None)
                return None

        guarded._sac_guarded = True  # type: ignore[attr-defined]
        return guarded


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    require_local_discovery()
    # rclpy's own handlers would shut the context down before close() runs (no final transitions, no
    # safe command); instead SIGINT raises KeyboardInterrupt (Python's default) and SIGTERM does the same.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Explicitly: a process started in the background by a non-interactive shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    node = executor = None
    try:
        node = factory()
        scheduled = apply_scheduling(node)
        if scheduled:
            node.get_logger().info(f"scheduling: {scheduled}")
        executor = make_executor(threads)
        executor.add_node(node)
        # Everything built so far (torch, the node) lives as long as the process: keep the garbage collector's
        # full passes from walking it again and again during the control loop.
        gc.freeze()
        guard = CallbackGuard()
        # From here a signal only ends the spin loop: raised inside a callback that the C++ executor runs, a
        # KeyboardInterrupt would be reported there as a failed callback instead of a clean stop.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, guard.request_stop)
        while not guard.stop.done():  # back in Python at least every 0.2 s: signals are seen, new entities guarded
            guard.guard(node)
            executor.spin_until_future_complete(guard.stop, timeout_sec=0.2)
        if guard.error is None:
            raise KeyboardInterrupt  # stopped by a signal
        raise guard.error
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None and node is not None:
            executor.remove_node(node)  # the executor lets go of the node before it is destroyed
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
