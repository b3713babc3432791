# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The e-stop, from other processes, the way people's tools publish it (test/estop_publisher.py):

* `ros2 topic pub --once --keep-alive 1 /sac_robot/estop std_msgs/msg/Bool "{data: true}"` (reliable,
  volatile: the README's command), a best-effort bridge or joystick node, and a latched (transient-local) button all stop the
  collector and the policy node; release alone never moves; sac_robot/resume does
* an e-stop latched before a node starts holds from its very first command: nothing moves
* the fail-safe heartbeat: no 'false' messages, no motion; the heartbeat stopping latches the e-stop
* the policy node's watchdog, non-finite sensors and limits (the collector's: test_hardware.py)
* an incompatible-QoS subscriber of joint_commands is reported in /diagnostics

Sensors are synthetic topics from the test process (test/hw_rig.py); every process runs on this test's
domain, localhost only, and is stopped by the test.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hw_rig import RATE_HZ, REPO, Observer, Procs, held, hw50_config, hw_config, node_cmd, start_collector

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(240)]

PUBLISHER = str(Path(__file__).with_name("estop_publisher.py"))
# The README's command: `ros2 topic pub --once --keep-alive 1 /sac_robot/estop std_msgs/msg/Bool "{data: true}"`.
# ros2cli's default --keep-alive (0.1 s) exits so soon after publishing that DDS cannot repair a delivery to
# a reader matched a moment late (one lost release seen here against a busy collector): the README asks for 1 s.
README_ESTOP = 'ros2 topic pub --once --keep-alive 1 /sac_robot/estop std_msgs/msg/Bool "{data: true}"'
CLI_KEEP_ALIVE = "1"
POLICY_NODE = "sac_robot/policy_node"
KINDS = ("cli", "best_effort", "latched")


class EstopPublishers:
    """Start e-stop publisher processes (one per press or release), stop the long-running ones."""

    def __init__(self, procs: Procs) -> None:
        self.procs = procs
        self.count = 0

    def start(self, kind: str, pressed: bool) -> subprocess.Popen:
        self.count += 1
        label = f"estop{self.count}_{kind}_{'press' if pressed else 'release'}"
        cmd = [sys.executable, PUBLISHER, "--qos", kind, "--data", "true" if pressed else "false"]
        if kind == "cli":
            cmd += ["--keep-alive", CLI_KEEP_ALIVE]
        proc = self.procs.start(label, cmd)
        log = self.procs.log_dir / f"{label}.log"
        deadline = time.monotonic() + 60.0
        while "published" not in log.read_text(errors="replace"):
            if proc.poll() is not None and "published" not in log.read_text(errors="replace"):
                pytest.fail(f"{label} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"{label} did not publish in 60 s:\n{self.procs.logs()}")
            time.sleep(0.05)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        self.procs.reaper.stop(proc)


def policy_config(tmp_path: Path, **safety: Any) -> Path:
    """quadruped_hw at 50 Hz (hw_rig's synthetic sensors), with ``safety`` overrides."""
    return hw50_config(tmp_path, "deploy50", **safety)


def export_policy_for(config: Path, path: Path) -> Path:
    """A freshly initialised policy for ``config``'s robot: its actions differ step to step, so held commands
    (all equal) are safe mode and nothing else."""
    from sac_robot.core.config import load_config
    from sac_robot.core.export import export_policy
    from sac_robot.core.sac import SAC
    from sac_robot.robot.deploy_check import pipeline_policy_info
    from sac_robot.robot.pipeline import build_pipeline

    cfg = load_config(str(config), {"sac.device": "cpu"})
    pipe = build_pipeline(cfg.robot, str(config))
    ones = np.ones(pipe.act_dim)
    agent = SAC(pipe.obs_dim, pipe.act_dim, -ones, ones, cfg.sac, seed=0)
    return export_policy(
        agent, path, env_id=cfg.env.id, config=cfg.model_dump(mode="json"), **pipeline_policy_info(pipe)
    )


def start_policy_node(procs: Procs, config: Path, tmp_path: Path) -> None:
    policy = export_policy_for(config, tmp_path / "policy.safetensors")
    # trigger timer: one command per control period, so "held" compares commands one period apart
    procs.start("policy", node_cmd("policy_node", {"policy": policy, "config": config, "trigger": "timer"}))


def wait_moving(obs: Observer, since_ns: int, what: str, n: int = 15) -> None:
    """The commands since ``since_ns`` end in ``n`` that all differ from the one before (the policy acts)."""

    def tail_moving() -> bool:
        recent = obs.commands_since(since_ns)[-n:]
        return len(recent) == n and not any(held(recent))

    obs.spin_until(tail_moving, 30.0, what)  # a node's first motion waits for the e-stop's start-up grace


def wait_held(obs: Observer, since_ns: int, what: str, n: int = 15) -> np.ndarray:
    """The commands since ``since_ns`` end in at least ``n`` identical ones (the hold); returns it."""

    def tail_held() -> bool:
        recent = obs.commands_since(since_ns)[-n:]
        return len(recent) == n and all(held(recent)[1:])

    obs.spin_until(tail_held, 10.0, what)
    return obs.commands_since(since_ns)[-1]


def press_release_resume(obs: Observer, pubs: EstopPublishers, kind: str, diag_name: str) -> None:
    """One e-stop cycle from publishers of one QoS kind: press → hold; release → still held; resume → moving."""
    t_press = time.time_ns()
    press = pubs.start(kind, True)
    hold = wait_held(obs, t_press, f"the hold after a {kind} e-stop")
    obs.wait_diag(lambda d: d["estop"] == "pressed", 5.0, f"estop pressed ({kind}) in diagnostics", diag_name)
    pubs.stop(press)  # a latched button's or a bridge's process: stopping it is not a release
    t_release = time.time_ns()
    release = pubs.start(kind, False)
    obs.wait_diag(lambda d: d["estop"].startswith("latched"), 5.0, f"the released latch ({kind})", diag_name)
    obs.spin_for(0.5)
    still = obs.commands_since(t_release)
    assert len(still) >= 10 and all(np.array_equal(c, hold) for c in still), f"release ({kind}) alone moved"
    for _ in range(20):  # a loaded machine may make a sensor momentarily older than the timeout
        response = obs.call("sac_robot/resume")
        if response.success:
            break
        obs.spin_for(0.2)
    assert response.success, response.message
    wait_moving(obs, time.time_ns(), f"motion after resume ({kind})")
    pubs.stop(release)


def test_collector_stops_from_every_estop_publisher(rig: Any, tmp_path: Path) -> None:
    procs = rig.procs
    start_collector(procs, hw50_config(tmp_path))
    obs = rig.observer("collector")
    rig.sensors(obs)
    procs.arm()
    obs.wait_training()
    wait_moving(obs, 0, "training steps (random actions)")
    pubs = EstopPublishers(procs)
    for kind in KINDS:
        press_release_resume(obs, pubs, kind, "sac_robot/collector/hw")
    assert obs.diag()["qos_incompatible"] == "none"


def test_policy_node_stops_from_every_estop_publisher(rig: Any, tmp_path: Path) -> None:
    procs = rig.procs
    start_policy_node(procs, policy_config(tmp_path), tmp_path)
    obs = rig.observer("policy")
    rig.sensors(obs)
    wait_moving(obs, 0, "the policy driving the robot")
    pubs = EstopPublishers(procs)
    for kind in KINDS:
        press_release_resume(obs, pubs, kind, POLICY_NODE)
    assert obs.diag(POLICY_NODE)["qos_incompatible"] == "none"


@pytest.mark.parametrize("node", ["collector", "policy"])
def test_estop_latched_before_start_holds_from_the_first_command(rig: Any, tmp_path: Path, node: str) -> None:
    """The latched button is up before the node starts; the node must never send a moving command."""
    procs = rig.procs
    obs = rig.observer()
    rig.sensors(obs)
    EstopPublishers(procs).start("latched", True)
    if node == "collector":
        # Armed at start (autostart) with no stand-up routine: a random policy acts from the very first step.
        config = hw_config(
            tmp_path, "hw50_now", control_rate_hz=RATE_HZ, episode_seconds=600, reset={"mode": "sim_service"}
        )
        start_collector(procs, config, autostart=True)
        diag_name = "sac_robot/collector/hw"
    else:
        start_policy_node(procs, policy_config(tmp_path), tmp_path)
        diag_name = POLICY_NODE
    obs.watch = (node,)
    obs.spin_until(lambda: len(obs.commands) >= 40, 60.0, f"the {node}'s first commands")
    commands = [c for _, c in obs.commands]
    assert all(held(commands)[1:]), f"the {node} sent {sum(not h for h in held(commands)[1:])} moving commands"
    d = obs.wait_diag(lambda d: d["estop"] == "pressed", 10.0, "the latched e-stop in diagnostics", diag_name)
    assert d["in_safe_mode"] == "true"


@pytest.mark.parametrize("node", ["collector", "policy"])
def test_heartbeat_fail_safe(rig: Any, tmp_path: Path, node: str) -> None:
    """robot.safety.estop_heartbeat_s: no 'false' heartbeat, no motion; a heartbeat that stops latches."""
    procs = rig.procs
    config = policy_config(tmp_path, estop_heartbeat_s=1.0)  # 10 beats a second: a loaded machine stays inside
    if node == "collector":
        start_collector(procs, config)
        diag_name = "sac_robot/collector/hw"
    else:
        start_policy_node(procs, config, tmp_path)
        diag_name = POLICY_NODE
    obs = rig.observer(node)
    rig.sensors(obs)
    if node == "collector":
        procs.arm()
        obs.wait_training()  # the stand-up and the steps run, held: no heartbeat yet
    obs.spin_until(lambda: len(obs.commands) >= 30, 60.0, f"the {node}'s first commands")
    assert all(held([c for _, c in obs.commands[-30:]])[1:]), "moved without a heartbeat"
    pubs = EstopPublishers(procs)
    beat = pubs.start("best_effort", False)  # 'false' at 10 Hz: the e-stop's radio is alive
    wait_moving(obs, time.time_ns(), "motion once the heartbeat arrives")
    pubs.stop(beat)  # the radio dies
    lost = time.time_ns()
    hold = wait_held(obs, lost, "the hold after the heartbeat stopped")
    obs.wait_diag(lambda d: d["estop"] == "heartbeat lost (latched)", 5.0, "the lost heartbeat", diag_name)
    beat = pubs.start("best_effort", False)
    back = time.time_ns()
    obs.spin_for(0.6)
    assert all(np.array_equal(c, hold) for c in obs.commands_since(back)), "the heartbeat's return alone moved"
    for _ in range(20):
        response = obs.call("sac_robot/resume")
        if response.success:
            break
        obs.spin_for(0.2)
    assert response.success, response.message
    wait_moving(obs, time.time_ns(), "motion after resume")


def test_policy_node_watchdog_nonfinite_sensors_and_limits(rig: Any, tmp_path: Path) -> None:
    """The policy node behind the safety layer: a silent sensor holds within two control periods (and motion
    comes back with it); NaN/inf in any sensor field never reaches a command; every command within limits."""
    import math

    from hw_rig import LOWER, MARGIN, PERIOD_S, UPPER

    procs = rig.procs
    start_policy_node(procs, policy_config(tmp_path, sensor_timeout_s=0.010), tmp_path)
    obs = rig.observer("policy")
    sensors = rig.sensors(obs)
    wait_moving(obs, 0, "the policy driving the robot")
    delays = []
    for topic in ("imu", "joint_states"):
        wait_moving(obs, time.time_ns(), f"motion before {topic} stops")
        sensors.enabled[topic] = False
        obs.spin_for(0.3)
        last = sensors.last_sent_ns[topic]
        stamped = [(t, c) for t, c in obs.commands if t > last - 200_000_000]
        flags = held([c for _, c in stamped])
        first = next((t for (t, _), h in zip(stamped, flags, strict=True) if h and t > last), None)
        assert first is not None and all(flags[-5:]), f"no lasting hold after {topic} stopped"
        delays.append((first - last) * 1e-9)
        sensors.enabled[topic] = True
    assert max(delays) <= 2 * PERIOD_S, f"hold later than two control periods: {delays}"
    wait_moving(obs, time.time_ns(), "motion once the sensors are back")
    start = time.time_ns()
    for topic, field in (("joint_states", "position"), ("joint_states", "velocity"), ("imu", "orientation.w")):
        for value in (math.nan, math.inf):
            sensors.corrupt(topic, field, value, 3)
    obs.spin_until(lambda: not sensors.plan, 10.0, "the corrupted messages to be sent")
    obs.spin_for(0.3)
    assert len(obs.commands_since(start)) >= 10
    d = obs.wait_diag(lambda d: int(d["bad_messages"]) >= 6, 5.0, "the rejected messages counted", POLICY_NODE)
    assert d["qos_incompatible"] == "none"
    commands = np.stack([c for _, c in obs.commands])
    assert np.all(np.isfinite(commands)), "a non-finite value reached joint_commands"
    assert np.all(commands >= LOWER + MARGIN - 1e-9) and np.all(commands <= UPPER - MARGIN + 1e-9)


def test_incompatible_joint_commands_subscriber_is_reported(rig: Any, tmp_path: Path) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Float64MultiArray

    procs = rig.procs
    start_policy_node(procs, policy_config(tmp_path), tmp_path)
    obs = rig.observer("policy")
    rig.sensors(obs)
    # A driver that asks for transient-local commands: the node's volatile publisher cannot serve it.
    wants = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    obs.node.create_subscription(Float64MultiArray, "joint_commands", lambda m: None, wants)
    d = obs.wait_diag(lambda d: d.get("qos_incompatible", "none") != "none", 30.0, "the QoS report", POLICY_NODE)
    assert "/joint_commands" in d["qos_incompatible"] and "DURABILITY" in d["qos_incompatible"]
    assert int(d["_level"]) >= 1
    log = (procs.log_dir / "policy.log").read_text(errors="replace")
    assert "WARN" in log and "incompatible QoS on /joint_commands" in log


def test_readme_estop_command_is_the_tested_one() -> None:
    """The README tells people to stop the robot with `ros2 topic pub` and its default QoS: the 'cli' kind."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert README_ESTOP in readme
    assert f"--keep-alive {CLI_KEEP_ALIVE} " in README_ESTOP
    config = yaml.safe_load((REPO / "config" / "quadruped_hw.yaml").read_text(encoding="utf-8"))
    assert "estop_grace_s" not in config["robot"]["safety"] or config["robot"]["safety"]["estop_grace_s"] >= 0.5
