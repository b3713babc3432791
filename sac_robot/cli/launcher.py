# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot launch JOB [name:=value ...]`: start a job's nodes as processes, without ros2 launch.

The nodes, parameters and remappings come from sac_robot.launch_spec, exactly as the launch files
use them. Ctrl-C (or SIGTERM) stops every node with SIGINT, waits for them (the learner writes its
final checkpoint), and kills what is left, so no process outlives the launcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sac_robot.core.config import ConfigError
from sac_robot.launch_spec import EXECUTABLES, NodeSpec, nodes_for


def parse_assignments(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ConfigError(f"launch argument {item!r}: expected name:=value")
        out[name] = value
    return out


def _yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'" if value == "" else value
    return str(value)


def node_command(spec: NodeSpec) -> list[str]:
    """The command line that runs a NodeSpec: the node module with the same --ros-args launch_ros passes."""
    cmd = [sys.executable, "-m", EXECUTABLES[spec.executable], "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    for key, value in spec.parameters.items():
        cmd += ["-p", f"{key}:={_yaml_value(value)}"]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def network_env() -> dict[str, str]:
    env = dict(os.environ)
    if "ROS_AUTOMATIC_DISCOVERY_RANGE" not in env:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        print(
            "sac-robot: ROS_AUTOMATIC_DISCOVERY_RANGE unset, using LOCALHOST (set SUBNET for robots on a LAN)",
            file=sys.stderr,
        )
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def launch(job: str, assignments: list[str]) -> int:
    specs = nodes_for(job, parse_assignments(assignments))
    env = network_env()
    procs: list[tuple[NodeSpec, subprocess.Popen]] = []
    stopping = {"flag": False}

    def request_stop(signum: int, frame: object) -> None:
        stopping["flag"] = True

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for spec in specs:
            # Own process group: a terminal's Ctrl-C reaches the launcher only, which then stops nodes in order.
            procs.append((spec, subprocess.Popen(node_command(spec), env=env, start_new_session=True)))
            print(f"sac-robot: started {spec.name} (pid {procs[-1][1].pid})", file=sys.stderr)
        code = 0
        while not stopping["flag"]:
            for spec, p in procs:
                rc = p.poll()
                if rc is not None and (spec.required or rc != 0):
                    print(f"sac-robot: {spec.name} exited with {rc}; stopping the job", file=sys.stderr)
                    code = rc if rc != 0 else 0
                    stopping["flag"] = True
                    break
            time.sleep(0.2)
        return code
    finally:
        _stop_all(procs)
        for s, handler in old.items():
            signal.signal(s, handler)


def _stop_all(procs: list[tuple[NodeSpec, subprocess.Popen]]) -> None:
    """SIGINT to the other nodes first, then to the required ones (the learner stores what collectors
    sent before its final checkpoint); whatever has not stopped by the deadline is killed."""
    for required in (False, True):
        start = time.monotonic()  # each group gets its own time: the learner's is not spent by the others
        group = [(spec, p) for spec, p in procs if spec.required == required]
        for _, p in group:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for spec, p in group:
            try:
                p.wait(timeout=max(0.1, start + spec.stop_timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"sac-robot: {spec.name} did not stop in time; killing it", file=sys.stderr)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
