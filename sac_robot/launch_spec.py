# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Which nodes each job starts, with which parameters and remappings: the one source for both
`ros2 launch sac_robot <job>.launch.py` and `sac-robot launch <job>`, so the two cannot drift.

Arguments are strings, as launch passes them; every job accepts the same snake_case names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sac_robot.core.config import ConfigError


@dataclass(frozen=True)
class Argument:
    name: str
    default: str
    description: str


@dataclass
class NodeSpec:
    executable: str  # console script in lib/sac_robot; also sac_robot.nodes.<module> (EXECUTABLES)
    name: str
    namespace: str = ""
    parameters: dict[str, object] = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False  # the job ends when this node exits
    package: str = "sac_robot"
    # Seconds a node may take to stop after SIGINT before it is killed (both launchers honour it): the learner
    # writes its final checkpoint and policy, a collector sends or spills what is unacknowledged.
    stop_timeout_s: float = 15.0


LEARNER_STOP_TIMEOUT_S = 120.0


EXECUTABLES = {
    "learner_node": "sac_robot.nodes.learner_node",
    "collector_node": "sac_robot.nodes.collector_node",
    "box2d_stand_in": "sac_robot.nodes.box2d_stand_in",
    "pybullet_stand_in": "sac_robot.nodes.pybullet_stand_in",
    "policy_node": "sac_robot.nodes.policy_node",
}

ARGUMENTS = [
    Argument("config", "bipedal_walker", "config file, or the name of a packaged config"),
    Argument("stand_in", "box2d", "robot stand-in: box2d, pybullet, or none (a real robot)"),
    Argument("run_dir", "runs/train_sim", "run directory of the learner"),
    Argument("resume", "false", "continue the run in run_dir from its last checkpoint"),
    Argument("namespace", "", "robot namespace (e.g. robot1); learner topics stay absolute"),
    Argument("start_learner", "true", "start the learner (false on a robot whose learner runs elsewhere)"),
    Argument("start_collector", "true", "start the collector (false on a workstation that only learns)"),
    Argument("policy", "", "deploy: the frozen policy file"),
    Argument("total_steps", "0", "learner: stop after this many transitions (0: the config's train.total_steps)"),
    Argument("seed", "0", "collector and stand-in seed"),
    Argument("torch_threads", "0", "learner: torch intra-op threads (0: the config's sac.torch_threads)"),
    Argument("learner_nice", "10", "learner: niceness added, so control loops on the same computer come first"),
    Argument(
        "control_priority",
        "0",
        "real time jobs: SCHED_FIFO priority (1-99) of the collector, policy node and stand-in; 0 off",
    ),
    Argument("env_id", "", "box2d stand-in: gymnasium id (default: the config's env.id)"),
    Argument("robot", "", "pybullet stand-in: robot description (default: the config's robot.description)"),
    Argument("joint_commands", "joint_commands", "remap the command topic to a real driver's"),
    Argument("joint_states", "joint_states", "remap the joint-state topic to a real driver's"),
    Argument("imu", "imu/data", "remap the IMU topic to a real driver's"),
]
DEFAULTS = {a.name: a.default for a in ARGUMENTS}
# Jobs differ in a few defaults: on hardware there is no stand-in unless asked (stand_in:=pybullet emulates one).
JOB_DEFAULTS = {
    "train_sim": {},
    "train_hw": {"config": "quadruped_hw", "stand_in": "none", "run_dir": "runs/train_hw", "control_priority": "50"},
    "deploy": {"config": "quadruped_hw", "stand_in": "none", "control_priority": "50"},
}
JOBS = tuple(JOB_DEFAULTS)


def defaults_for(job: str) -> dict[str, str]:
    if job not in JOB_DEFAULTS:
        raise ConfigError(f"unknown job {job!r}; known: {list(JOBS)}")
    return {**DEFAULTS, **JOB_DEFAULTS[job]}


def _flag(args: dict[str, str], name: str) -> bool:
    value = args[name].strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ConfigError(f"launch argument {name}: expected true or false, got {args[name]!r}")
    return value in ("true", "1")


def resolve_arguments(job: str, given: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown launch argument(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**defaults_for(job), **given}


def _robot_remaps(a: dict[str, str]) -> list[tuple[str, str]]:
    pairs = [("joint_commands", a["joint_commands"]), ("joint_states", a["joint_states"]), ("imu/data", a["imu"])]
    return [(src, dst) for src, dst in pairs if src != dst]


def _priority(a: dict[str, str], lockstep: bool) -> dict[str, object]:
    """Real-time scheduling for nodes on the control path of a real-time job (lockstep jobs wait anyway)."""
    prio = int(a["control_priority"])
    if not 0 <= prio <= 99:
        raise ConfigError(f"launch argument control_priority: expected 0-99, got {prio}")
    return {} if lockstep or prio == 0 else {"realtime_priority": prio}


def _stand_in(a: dict[str, str], lockstep: bool, emulate_hw: bool = False) -> list[NodeSpec]:
    kind = a["stand_in"]
    if kind == "none":
        return []
    if kind == "box2d":
        params: dict[str, object] = {"lockstep": lockstep, "seed": int(a["seed"]), **_priority(a, lockstep)}
        if a["env_id"]:
            params["env_id"] = a["env_id"]
        else:
            params["config"] = a["config"]
        return [NodeSpec("box2d_stand_in", "stand_in", a["namespace"], params)]
    if kind == "pybullet":
        params = {
            "config": a["config"],
            "lockstep": lockstep,
            "seed": int(a["seed"]),
            "emulate_hardware": emulate_hw,
            **_priority(a, lockstep),
        }
        if a["robot"]:
            params["robot"] = a["robot"]
        return [NodeSpec("pybullet_stand_in", "stand_in", a["namespace"], params)]
    raise ConfigError(f"launch argument stand_in: expected box2d, pybullet or none, got {kind!r}")


def _learner(a: dict[str, str]) -> list[NodeSpec]:
    if not _flag(a, "start_learner"):
        return []
    params = {
        "config": a["config"],
        "run_dir": a["run_dir"],
        "resume": _flag(a, "resume"),
        "total_steps": int(a["total_steps"]),
        "torch_threads": int(a["torch_threads"]),
        "nice": int(a["learner_nice"]),
    }
    return [NodeSpec("learner_node", "learner", "", params, required=True, stop_timeout_s=LEARNER_STOP_TIMEOUT_S)]


def _collector(a: dict[str, str], lockstep: bool, use_sim_time: bool) -> list[NodeSpec]:
    if not _flag(a, "start_collector"):
        return []
    params = {
        "config": a["config"],
        "seed": int(a["seed"]),
        "lockstep": lockstep,
        "use_sim_time": use_sim_time,
        **_priority(a, lockstep),
    }
    return [NodeSpec("collector_node", "collector", a["namespace"], params, _robot_remaps(a))]


def nodes_for(job: str, given: dict[str, str]) -> list[NodeSpec]:
    """The nodes a job starts for the given launch arguments (names as in ARGUMENTS)."""
    a = resolve_arguments(job, given)
    if job == "train_sim":
        return _stand_in(a, lockstep=True) + _learner(a) + _collector(a, lockstep=True, use_sim_time=True)
    if job == "train_hw":
        # Real time, the hardware config's routine reset and strict safety; stand_in:=pybullet emulates hardware.
        return _stand_in(a, lockstep=False, emulate_hw=True) + _learner(a) + _collector(a, False, False)
    if not a["policy"]:
        raise ConfigError("launch argument policy: deploy needs policy:=FILE")
    policy = NodeSpec(
        "policy_node",
        "policy",
        a["namespace"],
        {"policy": a["policy"], "config": a["config"], **_priority(a, lockstep=False)},
        _robot_remaps(a),
        required=True,
    )
    return _stand_in(a, lockstep=False, emulate_hw=True) + [policy]
