# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The process rig that the tests (test/) and the benchmarks (bench/) share.

Both run the nodes as processes on a ROS domain of their own, limited to localhost; both must stop
everything they started, however they end; both read the nodes' /diagnostics to know what is going on.
Each of them used to carry its own copy of that; this module is the one copy, inside the package so that
both import it without sys.path tricks:

* ``ros_env``/``private_ros_env``: the isolated environment (LOCALHOST discovery, own ROS_DOMAIN_ID,
  PYTHONUNBUFFERED, no ROS_STATIC_PEERS).
* ``node_cmd``/``cli_cmd``: ``python -m sac_robot.nodes.X --ros-args -r ... -p k:=v`` and ``sac-robot`` lines.
* ``Reaper``: processes in sessions of their own, stopped as whole process groups (SIGINT, SIGTERM, SIGKILL).
* ``ProcessGroup``: named processes with log files, liveness checks that quote the logs, CLI runs with a
  timeout, ``sac-robot arm``; everything stopped on exit.
* ``DiagnosticsMonitor``: a node of its own that keeps every /diagnostics status by name and spins until a
  condition holds, naming what it waited for when it times out.

Nothing in the package imports this module. rclpy and the message packages are imported inside the functions
that need them: the process part works where ROS is not installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

TERM_S = 3.0  # after SIGINT's grace: how long SIGTERM gets, then SIGKILL
KILL_S = 3.0
TAIL_CHARS = 3000  # how much of a log a failure quotes


# --- environment -------------------------------------------------------------------------------------------


def default_domain_id() -> int:
    """201-230 from the pid: neither the tests' 101-199 nor 100 (left to the long benchmarks run by hand)."""
    return 201 + os.getpid() % 30


def isolation_vars(domain_id: int) -> dict[str, str]:
    """The variables that keep ROS traffic on this machine and on one domain, and logs unbuffered."""
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1"}


def ros_env(domain_id: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment), isolated on ``domain_id``.

    ROS_STATIC_PEERS is removed: a peers list would widen discovery again."""
    env = dict(os.environ if base is None else base)
    env.update(isolation_vars(domain_id))
    env.pop("ROS_STATIC_PEERS", None)
    return env


def private_ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Isolate this process (for its own rclpy) and return the environment for its children.

    ``domain_id`` None: ``default_domain_id()``. Call it before rclpy is initialised."""
    env = ros_env(default_domain_id() if domain_id is None else domain_id)
    os.environ.update(isolation_vars(int(env["ROS_DOMAIN_ID"])))
    os.environ.pop("ROS_STATIC_PEERS", None)
    return env


# --- command lines -----------------------------------------------------------------------------------------


def param_text(value: object) -> str:
    """A ``-p key:=value`` value: booleans as true/false, lists as ``[a, b]``, everything else as str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    return str(value)


def node_cmd(
    module: str,
    params: Mapping[str, object] | None = None,
    *,
    name: str | None = None,
    namespace: str = "",
    script: str | Path | None = None,
) -> list[str]:
    """``python -m sac_robot.nodes.<module> --ros-args [-r __node:=name] [-r __ns:=/namespace] -p k:=v ...``.

    ``script``: run that file instead of the module (a patched copy of a node, say). Strings are passed as
    they are, so a caller may format a number itself (``f"{rate:g}"``)."""
    cmd = [sys.executable, str(script)] if script else [sys.executable, "-m", f"sac_robot.nodes.{module}"]
    cmd.append("--ros-args")
    if name:
        cmd += ["-r", f"__node:={name}"]
    if namespace:
        cmd += ["-r", f"__ns:=/{namespace.lstrip('/')}"]
    for key, value in (params or {}).items():
        cmd += ["-p", f"{key}:={param_text(value)}"]
    return cmd


def cli_cmd(*args: str) -> list[str]:
    """``sac-robot ARGS`` as this interpreter runs it (no PATH lookup)."""
    return [sys.executable, "-m", "sac_robot.cli.main", *args]


# --- process groups ----------------------------------------------------------------------------------------


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if there is none (any more) or it is not ours."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while any process (not a zombie) is in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


def session_children(pid: int) -> dict[int, bytes]:
    """Direct children of a process with their command lines (a launcher starts its nodes in sessions of
    their own: stopping the launcher's group does not reach them)."""
    out: dict[int, bytes] = {}
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    out[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    pass
    except OSError:
        pass
    return out


class Reaper:
    """Starts processes each in a session (a process group) of its own and stops whole groups.

    ``stop(proc)``: SIGINT to the group (as Ctrl-C; the nodes and the launcher shut down cleanly on it, the
    learner writing its checkpoint), after ``grace_s`` SIGTERM, then SIGKILL; at the end SIGKILL to the group
    anyway, for children the leader left behind. ``stop_all()`` (also on leaving a ``with`` block) stops
    every process started here, newest first."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self._launchers: set[subprocess.Popen] = set()
        self._finished: set[subprocess.Popen] = set()  # their group got the final SIGKILL, the leader was reaped

    def spawn(self, args: Sequence[str], *, launcher: bool = False, **kwargs: Any) -> subprocess.Popen:
        """``subprocess.Popen`` in a new session, tracked. ``launcher``: the process starts children in sessions
        of their own (``sac-robot launch``); those still running when it has stopped are killed as well."""
        kwargs["start_new_session"] = True
        proc = subprocess.Popen(args, **kwargs)
        return self.track(proc, launcher=launcher)

    def track(self, proc: subprocess.Popen, *, launcher: bool = False) -> subprocess.Popen:
        """Track a process started elsewhere (with ``start_new_session=True``)."""
        self.procs.append(proc)
        if launcher:
            self._launchers.add(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace_s: float = 5.0) -> int | None:
        """Stop ``proc``'s process group; its exit code, None if it would not die."""
        if proc in self._finished:
            return proc.returncode
        children = session_children(proc.pid) if proc in self._launchers else {}
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, TERM_S), (signal.SIGKILL, KILL_S)):
            if proc.poll() is not None:
                break
            signal_group(proc.pid, sig)
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        signal_group(proc.pid, signal.SIGKILL)  # the leader may be gone while children it started are not
        for pid, cmdline in children.items():  # still the same processes (not reused pids)?
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                    signal_group(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            code = proc.wait(timeout=KILL_S)
        except subprocess.TimeoutExpired:
            return None
        self._finished.add(proc)
        return code

    def kill(self, proc: subprocess.Popen) -> int:
        """SIGKILL the process group at once (a crash, not a shutdown) and reap the leader."""
        signal_group(proc.pid, signal.SIGKILL)
        code = proc.wait()
        self._finished.add(proc)
        return code

    def stop_all(self, grace_s: float = 5.0) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, grace_s)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


class ProcessExited(RuntimeError):
    """A process that should be running has exited; the message quotes the logs."""


class ProcessGroup:
    """Named processes with their output in ``log_dir/<label>.log``, stopped together.

    ``env``: their environment (None: this process's); ``cwd``: their working directory (None: this one's);
    ``reaper``: whose processes they are (a test's ``proc_reaper``; default: a reaper of this group's own,
    stopped by ``close()``); ``grace_s``: how long SIGINT gets before SIGTERM (per process: ``start``)."""

    def __init__(
        self,
        env: Mapping[str, str] | None,
        log_dir: Path,
        *,
        cwd: str | Path | None = None,
        reaper: Reaper | None = None,
        grace_s: float = 5.0,
    ) -> None:
        self.env = dict(env) if env is not None else None
        self.log_dir, self.cwd, self.grace_s = Path(log_dir), cwd, grace_s
        self.reaper = reaper if reaper is not None else Reaper()
        self._own_reaper = reaper is None
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, Path] = {}
        self._grace: dict[str, float | None] = {}
        self._done: set[str] = set()  # run to completion or stopped: not expected to be running

    def start(
        self,
        label: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log: str | None = None,
        grace_s: float | None = None,
        launcher: bool = False,
    ) -> subprocess.Popen:
        """Start ``cmd`` as ``label`` (a label used before now names the new process). ``log``: the log file's
        name without .log (default: the label); ``env``: instead of the group's; ``grace_s``: its own SIGINT
        grace; ``launcher``: see ``Reaper.spawn``."""
        path = self.log_dir / f"{log or label}.log"
        run_env = dict(env) if env is not None else self.env
        with open(path, "w", encoding="utf-8") as out:
            proc = self.reaper.spawn(
                cmd, env=run_env, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd, launcher=launcher
            )
        self.procs[label], self._logs[label], self._grace[label] = proc, path, grace_s
        self._done.discard(label)
        return proc

    def run(self, label: str, cmd: Sequence[str], timeout_s: float) -> tuple[int | None, str]:
        """Start ``cmd`` and wait for it: (exit code, or None if it was stopped at the timeout; its output)."""
        proc = self.start(label, cmd)
        self._done.add(label)
        try:
            code: int | None = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(label)
            code = None
        return code, self.log(label)

    def cli(self, label: str, *args: str, timeout_s: float = 60.0) -> tuple[int | None, str]:
        """``sac-robot ARGS`` with a timeout: (exit code or None, output)."""
        return self.run(label, cli_cmd(*args), timeout_s)

    def arm(self, *args: str, timeout_s: float = 60.0) -> None:
        """``sac-robot arm --timeout 40 ARGS`` (configure and activate the collector); raise if it fails."""
        code, out = self.cli("arm", "arm", "--timeout", "40", *args, timeout_s=timeout_s)
        if code != 0:
            raise RuntimeError(f"sac-robot arm failed ({code}):\n{out}\n{self.logs()}")

    def log_path(self, label: str) -> Path:
        return self._logs[label]

    def log(self, label: str) -> str:
        return self._logs[label].read_text(encoding="utf-8", errors="replace")

    def tail(self, label: str, chars: int = TAIL_CHARS) -> str:
        return self.log(label)[-chars:]

    def logs(self, chars: int = TAIL_CHARS) -> str:
        """The end of every process's log, with its exit code (None: running)."""
        return "\n".join(f"--- {k} (exit {p.poll()}) ---\n{self.tail(k, chars)}" for k, p in self.procs.items())

    def dead(self, *labels: str) -> dict[str, int]:
        """Exit codes of those of ``labels`` that have exited (no labels: of every process not run to
        completion or stopped here)."""
        names = labels or tuple(k for k in self.procs if k not in self._done)
        return {k: self.procs[k].returncode for k in names if self.procs[k].poll() is not None}

    def check_alive(self, *labels: str) -> None:
        """Raise ``ProcessExited``, quoting the logs, if any of ``labels`` (see ``dead``) has exited."""
        dead = self.dead(*labels)
        if dead:
            raise ProcessExited(f"exited early: {dead}\n{self.logs()}")

    def stop(self, *labels: str, grace_s: float | None = None) -> dict[str, int | None]:
        """Stop these processes in this order (no labels: all, newest first); their exit codes."""
        codes: dict[str, int | None] = {}
        for label in labels or tuple(reversed(self.procs)):
            own = self._grace.get(label)
            grace = grace_s if grace_s is not None else own if own is not None else self.grace_s
            codes[label] = self.reaper.stop(self.procs[label], grace)
            self._done.add(label)
        return codes

    def kill(self, label: str) -> int:
        """SIGKILL a process's group (a crash) and reap it."""
        self._done.add(label)
        return self.reaper.kill(self.procs[label])

    def close(self) -> None:
        """Stop everything (and, with a reaper of its own, whatever else that reaper started)."""
        try:
            self.stop()
        finally:
            if self._own_reaper:
                self.reaper.stop_all(self.grace_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- diagnostics -------------------------------------------------------------------------------------------


def spin_until(
    executor: Any,
    done: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    check: Callable[[], None] | None = None,
    details: Callable[[], str] | None = None,
    spin_s: float = 0.05,
) -> None:
    """Spin ``executor`` until ``done()``; ``check()`` before each spin (it raises if something died). Raise
    TimeoutError naming ``what`` (and ``details()``) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            extra = details() if details is not None else ""
            raise TimeoutError(
                f"timed out after {timeout_s:.0f} s waiting for {what}" + (f"\n{extra}" if extra else "")
            )
        executor.spin_once(timeout_sec=spin_s)


class DiagnosticsMonitor:
    """A node that keeps every /diagnostics status by name: ``diags[name]`` the values of each report (with
    ``_level`` and ``_message``), ``received[name]`` when each arrived (time.monotonic()).

    ``context``: an initialised rclpy context to use (a test's); None: one of its own on ``domain_id`` (None:
    ROS_DOMAIN_ID), without rclpy's signal handlers, shut down by ``close()``. ``procs``/``watch``: the
    processes that must stay alive while it spins (checked before every spin, ``ProcessExited`` if not)."""

    spin_s = 0.05  # the longest one spin waits for work

    def __init__(
        self,
        node_name: str = "rig_monitor",
        *,
        context: Any = None,
        domain_id: int | None = None,
        procs: ProcessGroup | None = None,
        watch: Iterable[str] = (),
        depth: int = 50,
    ) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self._own_context = context is None
        if context is None:
            context = Context()
            rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.context = context
        self.node = rclpy.create_node(node_name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.procs, self.watch = procs, tuple(watch)
        self.diags: dict[str, list[dict[str, str]]] = {}
        self.received: dict[str, list[float]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, depth)
        self.joint_state_count = 0
        self.rescues = 0
        self._last_rescue = -1e9

    def _on_diag(self, msg: Any) -> None:
        now = time.monotonic()
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            values["_level"], values["_message"] = str(status.level[0]), status.message
            self.diags.setdefault(status.name, []).append(values)
            self.received.setdefault(status.name, []).append(now)

    def latest(self, name: str) -> dict[str, str]:
        """The newest report of status ``name`` ({} before the first)."""
        return self.diags[name][-1] if self.diags.get(name) else {}

    def last(self, name: str) -> tuple[float, dict[str, str]]:
        """(when it arrived, values) of the newest report of ``name``; KeyError/IndexError before the first."""
        return self.received[name][-1], self.diags[name][-1]

    def received_at(self, name: str) -> float:
        """When the newest report of ``name`` arrived (0.0: none yet)."""
        return self.received[name][-1] if self.received.get(name) else 0.0

    def status_name(self, prefix: str) -> str | None:
        """The first status name seen that starts with ``prefix`` (e.g. ``sac_robot/collector/``)."""
        return next((k for k in self.diags if k.startswith(prefix)), None)

    def check(self, watch: Iterable[str] | None = None) -> None:
        """Raise ``ProcessExited`` if one of the watched processes (default: ``self.watch``) has exited."""
        labels = self.watch if watch is None else tuple(watch)
        if labels and self.procs is not None:
            self.procs.check_alive(*labels)

    def _details(self) -> str:
        last = {k: v[-1] for k, v in self.diags.items() if v}
        return f"last diagnostics: {last}\n{self.procs.logs() if self.procs is not None else ''}"

    def spin_once(self, timeout_s: float | None = None) -> None:
        self.executor.spin_once(timeout_sec=self.spin_s if timeout_s is None else timeout_s)

    def spin_until(
        self, done: Callable[[], bool], timeout_s: float, what: str, watch: Iterable[str] | None = None
    ) -> None:
        """Spin until ``done()``, checking the watched processes; TimeoutError naming ``what`` after
        ``timeout_s`` (with the last diagnostics and the processes' logs)."""
        labels = None if watch is None else tuple(watch)
        spin_until(
            self.executor,
            done,
            timeout_s,
            what,
            check=lambda: self.check(labels),
            details=self._details,
            spin_s=self.spin_s,
        )

    def spin_for(self, seconds: float, watch: Iterable[str] | None = None) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() >= end, seconds + 10.0, "time to pass", watch)

    def call(self, service: str, timeout_s: float = 20.0, ready_timeout_s: float = 60.0) -> Any:
        """Call a std_srvs/Trigger service: its response (TimeoutError if it is not there in
        ``ready_timeout_s`` or does not answer in ``timeout_s``)."""
        from std_srvs.srv import Trigger

        client = self.node.create_client(Trigger, service)
        try:
            self.spin_until(client.service_is_ready, ready_timeout_s, f"service {service}")
            future = client.call_async(Trigger.Request())
            self.spin_until(future.done, timeout_s, f"the answer of {service}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def trigger(self, service: str, timeout_s: float = 10.0) -> tuple[bool, str]:
        """``call`` that never raises a timeout: (success, message)."""
        try:
            result = self.call(service, timeout_s, ready_timeout_s=timeout_s)
        except TimeoutError as err:
            return False, str(err).splitlines()[0]
        return (bool(result.success), result.message) if result is not None else (False, "no answer")

    def watch_joint_states(self, callback: Callable[[Any], None] | None = None) -> None:
        """Count the robot's joint_states messages (``joint_state_count``) and pass each to ``callback``."""
        from sac_robot.nodes import ros_io as io

        def on_joint_states(msg: Any) -> None:
            self.joint_state_count += 1
            if callback is not None:
                callback(msg)

        self.node.create_subscription(io.JointState, io.JOINT_STATES, on_joint_states, io.SENSOR_QOS)

    def rescue_if_waiting(self, collector: str) -> bool:
        """A person's hands: right a robot whose reset routine gave up (sim/teleport_reset) and say go on
        (sac_robot/resume). True if a rescue was done now."""
        if not self.diags.get(collector):
            return False
        received, latest = self.last(collector)
        if latest.get("reset_phase") != "WAIT_FOR_PERSON" or received < self._last_rescue + 1.5:
            return False  # (a report sent before the last rescue took effect is no new request)
        ok, _ = self.trigger("sim/teleport_reset")
        ok = ok and self.trigger("sac_robot/resume")[0]
        self.rescues += int(ok)
        self._last_rescue = time.monotonic()
        return ok

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self._own_context:
            self.context.try_shutdown()


# --- benchmark helpers -------------------------------------------------------------------------------------


def write_config(source: str | Path, dest: Path, overrides: Mapping[str, object] | None = None) -> Path:
    """A packaged config (``quadruped_hw``) or a YAML file, with dotted overrides (``{'sac.batch_size': 64}``),
    written to ``dest`` for the nodes to load."""
    import yaml

    from sac_robot.core.config import resolve_config_path

    cfg = yaml.safe_load(resolve_config_path(source).read_text(encoding="utf-8"))
    for dotted, value in (overrides or {}).items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    dest.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return dest


def other_load(count: int = 5) -> list[str]:
    """The busiest processes of the machine other than this one (what loaded it during a measurement)."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,ni,args", "--sort=-pcpu"], check=False, capture_output=True, text=True
    ).stdout
    own = str(os.getpid())
    return [line.strip()[:110] for line in out.splitlines()[1 : count + 1] if own not in line]
