# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The collector's decisions without ROS: the UTD rule (one for every path), control timing, and the learner
link (liveness, re-sends, lockstep pacing, what the operator is told), and the collector loop's episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sac_robot.core.config import load_config
from sac_robot.core.utd import actor_update_due, updates_due
from sac_robot.robot import box2d_walker as walker
from sac_robot.robot.collector_loop import CollectorLoop, Signals
from sac_robot.robot.control_timing import ControlTiming
from sac_robot.robot.learner_link import RESEND_AFTER_S, LearnerLink
from sac_robot.robot.pipeline import build_pipeline, parse_robot_config
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState

pytestmark = pytest.mark.jazzy


def test_updates_due_starts_at_learning_starts_and_grows_by_utd() -> None:
    assert updates_due(999, utd=2, learning_starts=1000, batch_size=256) == 0
    assert updates_due(1000, utd=2, learning_starts=1000, batch_size=256) == 2  # the step at learning_starts too
    assert updates_due(1010, utd=2, learning_starts=1000, batch_size=256) == 22
    assert updates_due(100, utd=1, learning_starts=10, batch_size=256) == 0  # not before one batch is stored


def test_actor_updates_are_the_last_of_each_steps_updates() -> None:
    assert [actor_update_due(i, 4, 1) for i in range(8)] == [False, False, False, True] * 2
    assert all(actor_update_due(i, 3, None) for i in range(6))  # default: every update


def test_the_in_process_trainer_follows_the_rule(tmp_path) -> None:
    from sac_robot.training.trainer import Trainer

    overrides = {"sac.learning_starts": 10, "sac.batch_size": 8, "sac.utd": 3, "sac.device": "cpu"}
    overrides.update({"sac.hidden_sizes": [16, 16], "train.total_steps": 25, "train.eval_episodes": 1})
    trainer = Trainer(load_config("pendulum", overrides), tmp_path / "run", progress=False)
    trainer.run()
    assert trainer.agent.updates == updates_due(25, utd=3, learning_starts=10, batch_size=8) == 48


def test_control_timing_counts_missed_deadlines_and_pauses() -> None:
    timing = ControlTiming(0.02, 1.0)
    t = 0.0
    for _ in range(10):
        assert timing.tick(t) is None
        t += 0.02
    assert timing.tick(t + 0.02) == pytest.approx(0.04)  # a 40 ms period at 50 Hz: missed
    assert timing.missed_deadlines == 1 and timing.new_misses() == 1 and timing.new_misses() == 0
    timing.pause()
    assert timing.tick(t + 10.0) is None  # disarmed time is no period
    d = timing.diagnostics()
    assert d["missed_deadlines"] == "1" and float(d["control_period_p50_ms"]) == pytest.approx(20.0)


def link(lockstep: bool = True, **robot: object) -> LearnerLink:
    cfg = load_config("bipedal_walker")
    rc = parse_robot_config({**cfg.robot, **robot})  # Config.robot is the raw mapping
    return LearnerLink(rc, utd=1, learning_starts=100, batch_size=32, lockstep=lockstep, now=0.0)


def test_lockstep_waits_for_a_learner_that_owes_too_many_updates() -> None:
    lk = link(wait_for_learner=True, max_learner_lag_steps=10)
    assert not lk.behind(in_flight=50, has_policy=False)
    assert lk.behind(in_flight=100 + 32 + 11, has_policy=False)  # before any policy: it must store the data
    assert lk.waiting and lk.lag_waits == 1
    lk.waiting = False
    lk.on_ack(updates=50, stored=150, progressed=True, now=1.0)
    assert not lk.behind(in_flight=10, has_policy=True)  # owes 61 - 50 = 11 ≤ 1 × (10 + 1)
    assert lk.behind(in_flight=11, has_policy=True)
    assert not link(lockstep=False, wait_for_learner=True).behind(in_flight=10**6, has_policy=True)


def test_a_silent_learner_is_gone_said_and_resent_to() -> None:
    lk = link(lockstep=False, policy_timeout_s=5.0)
    assert not lk.gone(4.0, has_unacked=True)
    assert lk.gone(6.0, has_unacked=True) and not lk.gone(6.0, has_unacked=False)
    assert "no acknowledgement for 6 s" in lk.status(6.0, unacked=40, has_policy=False)
    assert lk.resend_due(RESEND_AFTER_S + 0.1, has_unacked=True)
    lk.resent(RESEND_AFTER_S + 0.1)
    assert not lk.resend_due(RESEND_AFTER_S + 1.0, has_unacked=True)  # re-sends are paced
    lk.on_ack(updates=0, stored=0, progressed=False, now=7.0)  # answers others only: still silent to us
    assert lk.gone(7.0, has_unacked=True)
    lk.on_ack(updates=0, stored=40, progressed=True, now=7.0)
    assert not lk.gone(7.5, has_unacked=True) and lk.status(7.5, 0, False) == "no policy yet (random actions)"
    lk.on_policy(8.0)
    assert lk.status(8.0, 0, True) == "ok" and not math.isinf(lk.last_ack_time)


def walker_loop(tmp_path) -> tuple[CollectorLoop, SafetyLayer]:
    robot = load_config("bipedal_walker").robot  # the packaged walker's robot section, as train_sim runs it
    pipe = build_pipeline({**robot, "spill_dir": str(tmp_path), "send_batch": 4})
    safety = SafetyLayer(pipe.cfg.safety, pipe.description, 0.02)
    return CollectorLoop(pipe, safety, "test", 0, seed=0), safety


def walker_state(safety: SafetyLayer, t: float) -> RobotState:
    for kind in ("joint_states", "imu"):
        safety.note_sensor(kind, t)
    obs = np.zeros(24)
    obs[14:] = 1.0  # lidar: nothing in range
    return walker.obs_to_state(obs, np.zeros(4), t)


def test_an_episode_that_ended_while_nothing_was_in_flight_restarts_without_a_transition(tmp_path) -> None:
    """Real time: the stand-in's episode can end during a hold (the e-stop's start-up grace); the collector
    must ask for a reset instead of waiting for a next state that a finished episode never brings."""
    loop, safety = walker_loop(tmp_path)
    over = loop.step(walker_state(safety, 1.0), Signals(-100.0, True, False), 1.0)
    assert over.reset and over.command is None and loop.steps == 0 and not loop.outbox
    first = loop.step(walker_state(safety, 2.0), Signals(0.0, False, False), 2.0)  # after the reset
    assert not first.reset and first.command is not None
    end = loop.step(walker_state(safety, 2.02), Signals(-100.0, True, False), 2.02)
    assert end.reset and end.episode["end"] == "terminated" and loop.steps == 1  # a real last step is stored
    assert loop.outbox[0][2] == -100.0 and loop.outbox[0][4] is True


def test_the_stored_and_observed_action_is_the_one_the_safety_layer_let_through(tmp_path) -> None:
    loop, safety = walker_loop(tmp_path)
    safety.estop(True, 0.0)  # latched: every command is the safe mode (zero effort)
    loop.step(walker_state(safety, 1.0), Signals(0.0, False, False), 1.0)
    # blind? no: the state is fresh; the e-stop replaced the random action by zero effort, and that is stored
    loop.step(walker_state(safety, 1.02), Signals(1.0, False, False), 1.02)
    assert loop.steps == 1
    np.testing.assert_array_equal(loop.outbox[0][1], np.zeros(4))
    np.testing.assert_array_equal(loop.prev_action, np.zeros(4))
