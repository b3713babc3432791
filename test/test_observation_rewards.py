# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Observation layout, reward shaping and fall detection behave as a training run relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sac_robot.robot.description import load_robot
from sac_robot.robot.observation import OBSERVATION_TERMS, ObservationBuilder, ObservationConfig, ObservationError
from sac_robot.robot.rewards import RewardConfig, compute_reward, forward_velocity_reward
from sac_robot.robot.state import RobotState
from sac_robot.robot.terminations import TerminationConfig, check_fall

QUAD = load_robot("quadruped")
HOME = QUAD.array("home")


def make_state(
    forward: float = 0.0, roll: float = 0.0, pitch: float = 0.0, height: float | None = 0.29, with_optional: bool = True
) -> RobotState:
    """A quadruped state with the given body-frame forward speed and attitude (roll about x, then pitch about y)."""
    qr = np.array([math.sin(roll / 2), 0.0, 0.0, math.cos(roll / 2)])
    qp = np.array([0.0, math.sin(pitch / 2), 0.0, math.cos(pitch / 2)])
    # ZYX convention: q = q_pitch * q_roll (yaw = 0)
    x1, y1, z1, w1 = qp
    x2, y2, z2, w2 = qr
    q = np.array(
        [
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        ]
    )
    return RobotState(
        joint_position=HOME.copy(),
        joint_velocity=np.zeros(12),
        joint_effort=np.full(12, 2.0),
        imu_orientation=q,
        base_linear_velocity=np.array([forward, 0.0, 0.0]) if with_optional else None,
        base_position=None if height is None else np.array([0.0, 0.0, height]),
        foot_contact=np.ones(4) if with_optional else None,
    )


def test_layout_covers_every_term_in_order() -> None:
    config = ObservationConfig(terms=list(OBSERVATION_TERMS))
    builder = ObservationBuilder(config, QUAD, action_dim=12)
    sizes = {term: end - start for term, start, end in builder.layout}
    assert [t for t, _, _ in builder.layout] == list(OBSERVATION_TERMS)
    assert sizes == {
        "joint_position": 12,
        "joint_velocity": 12,
        "gravity": 3,
        "angular_velocity": 3,
        "linear_acceleration": 3,
        "base_linear_velocity": 3,
        "foot_contact": 4,
        "previous_action": 12,
    }
    assert builder.size == 52 == builder.layout[-1][2]
    assert all(a[2] == b[1] for a, b in zip(builder.layout, builder.layout[1:]))  # contiguous

    action = np.linspace(-1.0, 1.0, 12)
    obs = builder.build(make_state(forward=0.4), action)
    assert obs.dtype == np.float32 and obs.shape == (52,)
    part = {term: obs[start:end] for term, start, end in builder.layout}
    np.testing.assert_allclose(part["joint_position"], 0.0)  # relative to home
    np.testing.assert_allclose(part["gravity"], [0.0, 0.0, -1.0])
    np.testing.assert_allclose(part["linear_acceleration"], [0.0, 0.0, 0.981], rtol=1e-6)  # default scale 0.1
    np.testing.assert_allclose(part["base_linear_velocity"], [0.4, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(part["previous_action"], action, rtol=1e-6)
    assert np.all((builder.low <= obs) & (obs <= builder.high))


def test_biped_layout_and_custom_scales() -> None:
    biped = load_robot("biped")
    config = ObservationConfig(terms=["foot_contact", "joint_velocity"], scales={"joint_velocity": 2.0})
    builder = ObservationBuilder(config, biped, action_dim=8)
    assert builder.layout == [("foot_contact", 0, 2), ("joint_velocity", 2, 10)]
    state = RobotState(
        joint_position=biped.array("home"),
        joint_velocity=np.arange(8.0),
        joint_effort=np.zeros(8),
        foot_contact=np.array([1.0, 0.0]),
    )
    np.testing.assert_allclose(builder.build(state, np.zeros(8)), [1.0, 0.0, *(2.0 * np.arange(8.0))])


def test_readings_beyond_sensor_range_are_clipped() -> None:
    builder = ObservationBuilder(ObservationConfig(terms=["linear_acceleration"], scales={}), QUAD, action_dim=12)
    state = make_state()
    state.imu_linear_acceleration = np.array([1e4, -1e4, 9.81])  # an impact spike
    np.testing.assert_allclose(builder.build(state, np.zeros(12)), [16 * 9.81, -16 * 9.81, 9.81], rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=48, max_size=48))
def test_any_finite_state_gives_an_observation_inside_the_space(values: list[float]) -> None:
    builder = ObservationBuilder(ObservationConfig(terms=list(OBSERVATION_TERMS)), QUAD, action_dim=12)
    v = np.array(values)
    state = make_state()
    state.joint_position, state.joint_velocity = v[:12], v[12:24]
    state.imu_angular_velocity, state.imu_linear_acceleration, state.base_linear_velocity = v[24:27], v[27:30], v[30:33]
    obs = builder.build(state, np.clip(v[33:45], -1.0, 1.0))
    assert obs.dtype == np.float32 and np.all(np.isfinite(obs))
    assert np.all((builder.low <= obs) & (obs <= builder.high))


@given(st.floats(-5.0, 5.0), st.floats(0.05, 2.0))
def test_forward_reward_is_bounded_and_never_drops_on_the_way_to_target(velocity: float, target: float) -> None:
    reward = forward_velocity_reward(velocity, target)
    assert 0.0 <= reward <= 1.0
    if velocity < target:
        assert forward_velocity_reward(min(velocity + 0.01, target), target) >= reward


@pytest.mark.parametrize("term", ["base_linear_velocity", "foot_contact"])
def test_missing_optional_field_names_the_term(term: str) -> None:
    builder = ObservationBuilder(ObservationConfig(terms=["joint_position", term]), QUAD, action_dim=12)
    with pytest.raises(ObservationError, match=term):
        builder.build(make_state(with_optional=False), np.zeros(12))


def test_observation_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        ObservationConfig(terms=["joint_position"], extra_term=1)
    with pytest.raises(ValidationError):
        ObservationConfig(terms=["joint_torque"])
    with pytest.raises(ValidationError, match="duplicate"):
        ObservationConfig(terms=["gravity", "gravity"])
    with pytest.raises(ValueError, match="previous_action"):
        ObservationBuilder(ObservationConfig(), QUAD, action_dim=12).build(make_state(), np.zeros(3))


def test_forward_velocity_reward_matches_walk_in_the_park() -> None:
    assert forward_velocity_reward(0.5, 0.5) == 1.0
    assert forward_velocity_reward(1.0, 0.5) == 1.0
    assert forward_velocity_reward(0.0, 0.5) == pytest.approx(0.5)
    assert forward_velocity_reward(-0.5, 0.5) == 0.0
    assert forward_velocity_reward(2.5, 0.5) == 0.0


def test_a_narrow_speed_margin_pays_nothing_for_standing_still() -> None:
    assert forward_velocity_reward(0.0, 0.5, margin=1.0) == 0.0
    assert forward_velocity_reward(0.25, 0.5, margin=1.0) == pytest.approx(0.5)
    assert forward_velocity_reward(0.5, 0.5, margin=1.0) == 1.0
    assert forward_velocity_reward(1.25, 0.5, margin=1.0) == pytest.approx(0.5)
    state = make_state(forward=0.0)
    zero = np.zeros(12)
    _, terms = compute_reward(RewardConfig(speed_margin=1.0), QUAD, state, zero, zero, fell=False)
    _, default_terms = compute_reward(RewardConfig(), QUAD, state, zero, zero, fell=False)
    assert terms["forward_velocity"] == 0.0 and default_terms["forward_velocity"] == pytest.approx(5.0)


def test_moving_forward_at_target_speed_beats_standing_and_backwards() -> None:
    config = RewardConfig()
    zero = np.zeros(12)
    moving, moving_terms = compute_reward(config, QUAD, make_state(forward=0.5), zero, zero, fell=False)
    standing, _ = compute_reward(config, QUAD, make_state(forward=0.0), zero, zero, fell=False)
    backwards, _ = compute_reward(config, QUAD, make_state(forward=-0.4), zero, zero, fell=False)
    assert moving > standing > backwards
    assert moving == pytest.approx(sum(moving_terms.values()))
    assert moving_terms["forward_velocity"] == pytest.approx(config.forward_velocity)


def test_falling_gets_the_penalty_and_shaping_terms_have_the_right_sign() -> None:
    config = RewardConfig(alive=1.0, height=1.0)
    zero = np.zeros(12)
    upright, up_terms = compute_reward(config, QUAD, make_state(), zero, zero, fell=False)
    fallen, terms = compute_reward(config, QUAD, make_state(roll=1.5, height=0.1), zero, zero, fell=True)
    assert terms["fall"] == -config.fall_penalty and terms["alive"] == 0.0
    assert fallen < upright - config.fall_penalty / 2
    assert terms["upright"] < up_terms["upright"] and terms["height"] < up_terms["height"]
    jerky, jerk_terms = compute_reward(config, QUAD, make_state(), np.ones(12), -np.ones(12), fell=False)
    assert jerk_terms["action_rate"] == pytest.approx(-config.action_rate * 48.0) and jerky < upright
    assert up_terms["effort"] == pytest.approx(-config.effort * 48.0)


def test_reward_needs_the_sensors_it_uses() -> None:
    zero = np.zeros(12)
    with pytest.raises(ValueError, match="forward_velocity"):
        compute_reward(RewardConfig(), QUAD, make_state(with_optional=False), zero, zero, fell=False)
    with pytest.raises(ValueError, match="height"):
        compute_reward(RewardConfig(height=1.0), QUAD, make_state(height=None), zero, zero, fell=False)
    # with those terms off, an IMU-and-encoders-only robot is fine
    config = RewardConfig(forward_velocity=0.0)
    total, _ = compute_reward(config, QUAD, make_state(with_optional=False, height=None), zero, zero, fell=False)
    assert math.isfinite(total)
    with pytest.raises(ValidationError):
        RewardConfig(speed=1.0)


def test_check_fall_reports_a_reason() -> None:
    config = TerminationConfig()
    assert check_fall(config, make_state(roll=0.2, pitch=-0.2)) is None
    assert "roll" in check_fall(config, make_state(roll=math.pi / 2))
    assert "pitch" in check_fall(config, make_state(pitch=-0.7))
    assert "roll" in check_fall(config, make_state(roll=math.pi))  # upside down
    low = TerminationConfig(min_base_height=0.15)
    assert check_fall(low, make_state(height=0.29)) is None
    assert "height" in check_fall(low, make_state(height=0.1))
    with pytest.raises(ValueError, match="base_position"):
        check_fall(low, make_state(height=None))
    broken = make_state()
    broken.joint_velocity[3] = float("nan")
    assert "non-finite" in check_fall(config, broken)
    with pytest.raises(ValidationError):
        TerminationConfig(max_roll=-1.0)
