# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""CPU scheduling of a node's process: control loops ahead of learning on a shared computer.

Every node takes two parameters: ``nice`` (added to the process's niceness; the learner uses it to yield the
CPU to control) and ``realtime_priority`` (1-99: SCHED_FIFO for every thread of the process, the DDS threads
included, as robot drivers run; 0: off). Real-time scheduling needs the right to it (root, CAP_SYS_NICE, or
an ``rtprio`` limit in /etc/security/limits.conf); without it the node says so and runs at normal priority.
"""

from __future__ import annotations

import os
from pathlib import Path

from rclpy.node import Node


def apply_scheduling(node: Node) -> str:
    """Apply the node's ``nice`` and ``realtime_priority`` parameters; returns what was done, for the log."""
    nice = _param(node, "nice", 0)
    prio = _param(node, "realtime_priority", 0)
    done = []
    if nice:
        done.append(f"niceness {os.nice(nice)}")
    if prio:
        if not 1 <= prio <= 99:
            raise ValueError(f"parameter realtime_priority: {prio} is not in 1..99 (0 turns it off)")
        threads = [int(t.name) for t in Path("/proc/self/task").iterdir()]
        try:
            for tid in threads:  # all threads: a message reaches the callback through the DDS receive threads
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(prio))
            done.append(f"SCHED_FIFO {prio} on {len(threads)} threads")
        except PermissionError:
            node.get_logger().warning(
                f"realtime_priority {prio} refused (needs CAP_SYS_NICE or an rtprio limit): normal scheduling"
            )
    return ", ".join(done)


def _param(node: Node, name: str, default: int) -> int:
    if not node.has_parameter(name):
        node.declare_parameter(name, default)
    return int(node.get_parameter(name).value)
