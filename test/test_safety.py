# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The safety layer's promises: whatever is asked, what goes out is finite and within limits."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.safety import ESTOP_LATCHED_WAIT_S, SafetyConfig, SafetyLayer, StatusLevel
from sac_robot.robot.state import RobotState

DT = 0.01
J = 3


def make_description() -> RobotDescription:
    joints = [
        {"name": "hip", "home": 0.0, "lower": -0.8, "upper": 0.8, "velocity": 10.0, "effort": 20.0, "kd": 0.5},
        {"name": "thigh", "home": 0.7, "lower": -1.0, "upper": 2.5, "velocity": 5.0, "effort": 30.0, "kd": 1.0},
        {"name": "calf", "home": -1.4, "lower": -2.7, "upper": -0.9, "velocity": 8.0, "effort": 40.0, "kd": 2.0},
    ]
    return RobotDescription.model_validate(
        {"name": "test", "urdf": "test.urdf", "base_link": "base", "imu_link": "imu", "joints": joints}
    )


DESC = make_description()
HARD_LOWER, HARD_UPPER = DESC.array("lower"), DESC.array("upper")


def make_state(q=None, qd=None, roll: float = 0.0, stamp: float = 0.0) -> RobotState:
    q = DESC.array("home") if q is None else np.asarray(q, dtype=np.float64)
    qd = np.zeros(J) if qd is None else np.asarray(qd, dtype=np.float64)
    quat = np.array([math.sin(roll / 2), 0.0, 0.0, math.cos(roll / 2)])
    return RobotState(q, qd, np.zeros(J), imu_orientation=quat, stamp=stamp)


def slow_hands() -> Callable[[], float]:
    """A steady clock a second later at every look: no release comes within the hold-off after a press."""
    ticks = itertools.count(0.0, 1.0)
    return lambda: next(ticks)


def fresh(layer: SafetyLayer, now: float) -> None:
    layer.note_sensor("joint_states", now)
    layer.note_sensor("imu", now)


# Desired commands as a policy gone wrong produces them: anything, NaN and inf included, often huge.
wild_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-5.0, max_value=5.0),
    st.sampled_from([1e308, -1e308, 1e9, -1e9, math.nan, math.inf, -math.inf]),
)
desired_st = arrays(np.float64, J, elements=wild_floats)
positions_st = arrays(np.float64, J, elements=st.floats(min_value=-4.0, max_value=4.0))
velocities_st = arrays(np.float64, J, elements=st.floats(min_value=-30.0, max_value=30.0))
# Each step: desired, state kind, measured position/velocity, whether sensor messages arrived, time jitter.
step_st = st.tuples(
    desired_st,
    st.sampled_from(["ok", "ok", "ok", "nan", "none"]),
    positions_st,
    velocities_st,
    st.booleans(),
    st.floats(min_value=0.5, max_value=3.0),
)


def run_steps(layer: SafetyLayer, steps) -> list:
    now, results = 0.0, []
    for desired, kind, q, qd, sensors_arrive, jitter in steps:
        now += DT * jitter
        if sensors_arrive:
            fresh(layer, now)
        if kind == "none":
            state = None
        else:
            state = make_state(q, qd, stamp=now)
            if kind == "nan":
                state.joint_velocity = state.joint_velocity.copy()
                state.joint_velocity[0] = math.nan
        results.append(layer.filter(desired, state, now))
    return results


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(step_st, min_size=1, max_size=25),
    margin=st.floats(min_value=0.0, max_value=0.2),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    alpha=st.sampled_from([0.0, 0.0, 0.5, 0.9]),
)
def test_position_commands_always_within_limits(steps, margin, fraction, alpha) -> None:
    config = SafetyConfig(position_margin=margin, max_velocity_fraction=fraction, lowpass_alpha=alpha)
    layer = SafetyLayer(config, DESC, DT)
    lower, upper = HARD_LOWER + margin, HARD_UPPER - margin
    max_step = fraction * DESC.array("velocity") * DT
    previous = None
    for (_, _, _, qd, _, _), result in zip(steps, run_steps(layer, steps)):
        cmd = result.command
        assert cmd.dtype == np.float64 and cmd.shape == (J,)
        assert np.all(np.isfinite(cmd))
        assert np.all(cmd >= lower) and np.all(cmd <= upper)
        if previous is not None:
            assert np.all(np.abs(cmd - previous) <= max_step + 1e-12)
            if not result.safe_mode:  # a joint already beyond its rated speed is never pushed further that way
                overspeed = np.abs(np.asarray(qd, dtype=float)) > DESC.array("velocity")
                assert not np.any(overspeed & ((cmd - previous) * np.asarray(qd, dtype=float) > 1e-12))
        if not result.safe_mode and result.reasons:
            assert result.intervened
        previous = cmd


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(step_st, min_size=1, max_size=20),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    safe_mode=st.sampled_from(["damping", "zero_effort"]),
)
def test_effort_commands_always_within_limits(steps, fraction, safe_mode) -> None:
    config = SafetyConfig(command_mode="effort", safe_mode=safe_mode, max_effort_fraction=fraction)
    layer = SafetyLayer(config, DESC, DT)
    max_effort = fraction * DESC.array("effort")
    for (_, kind, q, qd, _, _), result in zip(steps, run_steps(layer, steps)):
        cmd = result.command
        assert np.all(np.isfinite(cmd))
        assert np.all(np.abs(cmd) <= max_effort)
        if not result.safe_mode:
            # Beyond the margined limits nothing pushes further out, above the speed limit nothing accelerates.
            assert not np.any((q >= layer.upper) & (cmd > 0))
            assert not np.any((q <= layer.lower) & (cmd < 0))
            assert not np.any((np.abs(qd) > layer.max_velocity) & (cmd * qd > 0))


def test_clipping_is_reported_and_within_one_step() -> None:
    layer = SafetyLayer(SafetyConfig(position_margin=0.05, max_velocity_fraction=0.5), DESC, DT)
    fresh(layer, 0.0)
    state = make_state()
    result = layer.filter(np.array([100.0, 0.7, -1.4]), state, 0.0)
    assert not result.safe_mode and result.intervened
    assert result.reasons == ["position_limit", "rate_limit"]
    assert result.command[0] == pytest.approx(0.0 + 0.5 * 10.0 * DT)  # one rate-limited step toward the limit
    np.testing.assert_allclose(result.command[1:], [0.7, -1.4])
    # A request inside all limits passes unchanged.
    result = layer.filter(result.command + np.array([0.01, -0.01, 0.0]), state, DT)
    assert not result.intervened and result.reasons == []


@settings(max_examples=40, deadline=None)
@given(
    before=st.lists(desired_st, min_size=1, max_size=8),
    during=st.lists(desired_st, min_size=1, max_size=8),
)
def test_estop_latches_until_resume(before, during) -> None:
    layer = SafetyLayer(SafetyConfig(), DESC, DT, steady_clock=slow_hands())
    now, state = 0.0, make_state()
    for desired in before:
        now += DT
        fresh(layer, now)
        layer.filter(desired, state, now)
    hold = layer.filter(DESC.array("home"), state, now).command
    layer.estop(True, now)
    for i, desired in enumerate(during):
        now += DT
        fresh(layer, now)
        if i == len(during) // 2:
            layer.estop(False, now)  # releasing the button alone must not resume
        result = layer.filter(desired, state, now)
        assert result.safe_mode and "estop" in result.reasons
        np.testing.assert_array_equal(result.command, hold)
    assert layer.in_safe_mode
    layer.estop(False, now)
    ok, message = layer.request_resume(now)
    assert ok, message
    target = hold + np.array([0.01, 0.0, 0.0])
    result = layer.filter(target, state, now + DT)
    assert not result.safe_mode
    np.testing.assert_allclose(result.command, target)


def test_resume_refused_while_pressed_or_blind() -> None:
    layer = SafetyLayer(SafetyConfig(sensor_timeout_s=0.05), DESC, DT, steady_clock=slow_hands())
    fresh(layer, 0.0)
    layer.estop(True, 0.0)
    ok, message = layer.request_resume(0.01)
    assert not ok and "pressed" in message
    layer.estop(False, 0.02)
    ok, message = layer.request_resume(1.0)  # sensors went silent meanwhile
    assert not ok and "joint_states" in message
    assert layer.estop_latched and layer.filter(np.zeros(J), make_state(), 1.0).safe_mode
    fresh(layer, 1.0)
    assert layer.request_resume(1.0)[0]


def test_effort_estop_gives_damping_command() -> None:
    layer = SafetyLayer(SafetyConfig(command_mode="effort", max_effort_fraction=0.5), DESC, DT)
    fresh(layer, 0.0)
    layer.estop(True, 0.0)
    qd = np.array([2.0, -1.0, 100.0])
    result = layer.filter(np.full(J, 5.0), make_state(qd=qd), 0.0)
    assert result.safe_mode
    expected = np.clip(-DESC.array("kd") * qd, -0.5 * DESC.array("effort"), 0.5 * DESC.array("effort"))
    np.testing.assert_allclose(result.command, expected)
    assert result.command[2] == -20.0  # 2 * 100 clipped to half of 40 N·m


@pytest.mark.parametrize("kind", ["joint_states", "imu"])
def test_stale_sensor_enters_safe_mode_within_two_periods(kind) -> None:
    timeout = 0.05
    layer = SafetyLayer(SafetyConfig(sensor_timeout_s=timeout), DESC, DT)
    other = "imu" if kind == "joint_states" else "joint_states"
    t_stop, state, first_safe = 0.5, make_state(), None
    for k in range(1, 120):
        now = k * DT
        layer.note_sensor(other, now)
        if now <= t_stop:
            layer.note_sensor(kind, now)
        result = layer.filter(DESC.array("home"), state, now)
        if result.safe_mode:
            assert f"stale_{kind}" in result.reasons
            first_safe = now
            break
        assert now <= t_stop + timeout + 1e-9  # no false alarm before the timeout
    assert first_safe is not None and first_safe <= t_stop + timeout + 2 * DT
    # Messages flowing again end the safe mode (only the e-stop latches).
    fresh(layer, first_safe + DT)
    assert not layer.filter(DESC.array("home"), state, first_safe + DT).safe_mode


def test_never_heard_sensor_is_stale() -> None:
    layer = SafetyLayer(SafetyConfig(), DESC, DT)
    layer.note_sensor("joint_states", 0.0)
    result = layer.filter(DESC.array("home"), make_state(), 0.0)
    assert result.safe_mode and result.reasons == ["stale_imu"]
    fresh(layer, 0.0)
    assert layer.filter(DESC.array("home"), make_state(), math.nan).safe_mode  # a broken clock is no alibi
    with pytest.raises(ValueError, match="unknown sensor kind"):
        layer.note_sensor("lidar", 0.0)


@pytest.mark.parametrize("mode", ["position", "effort"])
def test_nan_state_gives_safe_mode_and_finite_command(mode) -> None:
    layer = SafetyLayer(SafetyConfig(command_mode=mode), DESC, DT)
    fresh(layer, 0.0)
    state = make_state(qd=[math.nan, 0.0, 0.0])
    state.joint_position = np.array([0.1, math.nan, -1.4])
    result = layer.filter(np.full(J, 0.1), state, 0.0)
    assert result.safe_mode and result.reasons == ["state_nonfinite"]
    assert np.all(np.isfinite(result.command))
    if mode == "position":
        np.testing.assert_array_equal(result.command, layer.home)  # nothing measured: hold home
    else:
        np.testing.assert_array_equal(result.command, np.zeros(J))  # no trustworthy velocity to damp


def test_nan_velocity_holds_the_measured_pose() -> None:
    layer = SafetyLayer(SafetyConfig(), DESC, DT)
    fresh(layer, 0.0)
    state = make_state(q=[0.1, 0.5, -1.2], qd=[0.0, math.nan, 0.0])
    result = layer.filter(np.zeros(J), state, 0.0)
    assert result.safe_mode and result.reasons == ["state_nonfinite"]
    np.testing.assert_allclose(result.command, [0.1, 0.5, -1.2])  # a valid pose is still the best hold target


def test_nan_desired_holds_last_target() -> None:
    layer = SafetyLayer(SafetyConfig(), DESC, DT)
    fresh(layer, 0.0)
    state = make_state(q=[0.1, 0.5, -1.2])
    first = layer.filter(np.array([0.1, 0.5, -1.2]), state, 0.0).command
    result = layer.filter(np.array([math.nan, 0.5, math.inf]), state, DT)
    assert result.safe_mode and result.reasons == ["desired_nonfinite"]
    np.testing.assert_array_equal(result.command, first)
    assert layer.filter(np.zeros(5), state, 2 * DT).reasons == ["desired_shape"]


def test_safe_mode_pairing_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="safe_mode"):
        SafetyConfig(command_mode="effort", safe_mode="hold")
    with pytest.raises(ValidationError, match="safe_mode"):
        SafetyConfig(command_mode="position", safe_mode="damping")
    assert SafetyConfig(command_mode="effort").safe_mode == "damping"
    assert SafetyConfig().safe_mode == "hold"


@pytest.mark.parametrize(
    "key, value",
    [("lowpass_alpha", 1.0), ("max_velocity_fraction", 1.5), ("sensor_timeout_s", 0.0), ("command_mode", "torque")],
)
def test_bad_values_name_the_key(key, value) -> None:
    with pytest.raises(ValidationError, match=key):
        SafetyConfig(**{key: value})


def test_unknown_key_and_margin_wider_than_range_name_the_key() -> None:
    with pytest.raises(ValidationError, match="max_velocity"):
        SafetyConfig(max_velocity=1.0)
    # The calf range is 1.8 rad: a 1.0 rad margin puts the lower bound above the upper one.
    with pytest.raises(ValueError, match="position_margin.*calf"):
        SafetyLayer(SafetyConfig(position_margin=1.0), DESC, DT)


def test_counters_log_and_diagnostics_reflect_interventions() -> None:
    layer = SafetyLayer(SafetyConfig(log_size=5), DESC, DT)
    state = make_state()
    for k in range(8):
        now = k * DT
        fresh(layer, now)
        assert layer.filter(np.array([10.0, 0.7, -1.4]), state, now).intervened
    assert layer.counts["rate_limit"] == 8 and layer.counts["position_limit"] == 8
    recent = layer.recent_interventions
    assert len(recent) == 5 and [r.stamp for r in recent] == pytest.approx([k * DT for k in range(3, 8)])
    assert layer.status_level() == StatusLevel.WARN
    diag = layer.diagnostics()
    assert diag["count.position_limit"] == "8" and diag["interventions"] == "8"
    assert diag["last_reasons"] == "position_limit, rate_limit" and diag["estop"] == "clear"
    assert all(isinstance(v, str) for v in diag.values())

    layer.estop(True, 0.08)
    layer.filter(np.zeros(J), state, 0.08)
    assert layer.status_level() == StatusLevel.ERROR
    diag = layer.diagnostics()
    assert diag["estop"] == "pressed" and diag["count.estop"] == "1" and diag["in_safe_mode"] == "true"

    quiet = SafetyLayer(SafetyConfig(), DESC, DT)
    fresh(quiet, 0.0)
    assert not quiet.filter(DESC.array("home"), state, 0.0).intervened
    assert quiet.status_level() == StatusLevel.OK and quiet.counts == {}


def test_fall_is_reported_once_per_fall_without_blocking_commands() -> None:
    layer = SafetyLayer(SafetyConfig(max_roll=0.8, min_base_height=0.15), DESC, DT)
    for k in range(5):
        fresh(layer, k * DT)
        result = layer.filter(DESC.array("home"), make_state(roll=1.5), k * DT)
        assert result.fell is not None and "roll" in result.fell
        assert not result.safe_mode  # the reset routine must still be able to stand the robot up
    assert layer.counts["fell"] == 1
    low = make_state()
    low.base_position = np.array([0.0, 0.0, 0.05])
    fresh(layer, 1.0)
    assert "base height" in layer.filter(DESC.array("home"), low, 1.0).fell


def test_reset_filter_reseeds_hold_target_inside_limits() -> None:
    layer = SafetyLayer(SafetyConfig(position_margin=0.05), DESC, DT)
    fresh(layer, 0.0)
    layer.reset_filter(np.array([5.0, math.nan, -1.0]))
    layer.estop(True, 0.0)
    command = layer.filter(np.zeros(J), make_state(), 0.0).command
    np.testing.assert_allclose(command, [0.75, DESC.array("home")[1], -1.0])


# --- e-stop start-up grace, duplicate deliveries, fail-safe heartbeat ---------------------------------------


class FakeSteady:
    """The steady clock of the e-stop's grace and heartbeat, moved by the test."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_nothing_moves_during_the_estop_grace_and_a_latched_estop_arriving_in_it_holds() -> None:
    steady = FakeSteady()
    layer = SafetyLayer(SafetyConfig(estop_grace_s=0.5), DESC, DT, steady_clock=steady)
    state, now = make_state(), 0.0
    fresh(layer, now)
    layer.listen_for_estop()
    far = DESC.array("home") + 0.3
    for _ in range(4):  # 0.4 s of the 0.5 s grace: always the hold, whatever the policy asks
        steady.t += 0.1
        result = layer.filter(far, state, now)
        assert result.safe_mode and "estop_unknown" in result.reasons
        np.testing.assert_array_equal(result.command, np.clip(DESC.array("home"), layer.lower, layer.upper))
    assert "starting" in layer.status_message()
    layer.estop(True, now)  # the latched e-stop arrives late in the grace
    steady.t += 0.2  # the grace is over; the e-stop holds
    result = layer.filter(far, state, now)
    assert result.safe_mode and result.reasons[0] == "estop" and "estop_unknown" not in result.reasons


def test_after_the_grace_with_no_estop_the_robot_moves() -> None:
    steady = FakeSteady()
    layer = SafetyLayer(SafetyConfig(estop_grace_s=0.5), DESC, DT, steady_clock=steady)
    fresh(layer, 0.0)
    layer.listen_for_estop()
    assert not layer.estop_known
    steady.t += 0.51
    assert layer.estop_known
    assert not layer.filter(DESC.array("home"), make_state(), 0.0).safe_mode


def test_a_layer_that_no_node_listens_for_has_no_grace() -> None:
    """Offline users of the layer (bring-up math, tests, the in-process env) are not held."""
    layer = SafetyLayer(SafetyConfig(), DESC, DT)
    fresh(layer, 0.0)
    assert layer.estop_known and not layer.filter(DESC.array("home"), make_state(), 0.0).safe_mode


def test_a_late_copy_of_a_release_cannot_undo_a_newer_press() -> None:
    """One message reaches a node through several subscriptions (one per QoS profile), so a copy of a release
    can arrive just after a newer press: a release that soon after a press is ignored."""
    steady = FakeSteady()
    layer = SafetyLayer(SafetyConfig(), DESC, DT, steady_clock=steady)
    assert layer.estop(True, 0.0)
    steady.t += 1.0
    assert layer.estop(False, 0.0) and not layer.estop_pressed  # a real release
    assert layer.estop(True, 0.0)  # pressed again ...
    steady.t += 0.001
    assert not layer.estop(False, 0.0)  # ... and the old release's second copy arrives: ignored
    assert layer.estop_pressed and layer.estop_latched
    ok, why = layer.request_resume(0.0)
    assert not ok and "still pressed" in why
    steady.t += 0.3  # a person releasing later is heard
    assert layer.estop(False, 0.0) and not layer.estop_pressed
    assert layer.counts["estop_pressed"] == 2


def test_heartbeat_missing_from_the_start_keeps_the_robot_still_without_latching() -> None:
    steady = FakeSteady()
    layer = SafetyLayer(SafetyConfig(estop_heartbeat_s=0.2), DESC, DT, steady_clock=steady)
    fresh(layer, 0.0)
    result = layer.filter(DESC.array("home"), make_state(), 0.0)
    assert result.safe_mode and "estop_heartbeat" in result.reasons
    assert not layer.estop_latched
    layer.estop(False, 0.0)  # the first heartbeat: moving is allowed at once, nothing was latched
    assert not layer.filter(DESC.array("home"), make_state(), 0.0).safe_mode


def test_heartbeat_lost_latches_and_needs_the_heartbeat_and_a_resume() -> None:
    steady = FakeSteady()
    layer = SafetyLayer(SafetyConfig(estop_heartbeat_s=0.2), DESC, DT, steady_clock=steady)
    fresh(layer, 0.0)
    for _ in range(5):  # heartbeats at 10 Hz: moving
        assert layer.estop(False, 0.0)
        steady.t += 0.1
        assert not layer.filter(DESC.array("home"), make_state(), 0.0).safe_mode
    steady.t += 0.25  # the radio died
    result = layer.filter(DESC.array("home"), make_state(), 0.0)
    assert result.safe_mode and "estop_heartbeat" in result.reasons and layer.estop_latched
    assert layer.diagnostics()["estop"] == "heartbeat lost (latched)"
    ok, why = layer.request_resume(0.0)
    assert not ok and "heartbeat" in why
    layer.estop(False, 0.0)  # the link is back: still latched
    assert layer.filter(DESC.array("home"), make_state(), 0.0).safe_mode
    ok, why = layer.request_resume(0.0)
    assert ok, why
    assert not layer.filter(DESC.array("home"), make_state(), 0.0).safe_mode
    assert layer.counts["estop_heartbeat_lost"] == 1  # one loss, however many steps it lasted


def test_estop_settings_are_validated_by_name() -> None:
    with pytest.raises(ValidationError, match="estop_heartbeat_s"):
        SafetyConfig(estop_heartbeat_s=0)
    with pytest.raises(ValidationError, match="estop_grace_s"):
        SafetyConfig(estop_grace_s=-1)


def test_a_visible_latched_estop_publisher_extends_the_grace_until_its_message_arrives() -> None:
    steady = FakeSteady()
    layer = SafetyLayer(SafetyConfig(estop_grace_s=0.5), DESC, DT, steady_clock=steady)
    layer.listen_for_estop()
    layer.note_latched_estop_publishers(1)  # the graph shows a latched button; its message is on the way
    steady.t += 3.0
    assert not layer.estop_known
    layer.estop(True, 0.0)  # there it is
    assert layer.estop_known and layer.estop_pressed
    # A latched publisher that never publishes holds the start for at most ESTOP_LATCHED_WAIT_S more.
    quiet = SafetyLayer(SafetyConfig(estop_grace_s=0.5), DESC, DT, steady_clock=steady)
    quiet.listen_for_estop()
    quiet.note_latched_estop_publishers(1)
    steady.t += 0.5 + ESTOP_LATCHED_WAIT_S - 0.01
    assert not quiet.estop_known
    steady.t += 0.02
    assert quiet.estop_known
