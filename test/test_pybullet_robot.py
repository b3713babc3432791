# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The simulated robot stands, senses like real hardware, resets cleanly and is reproducible."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from sac_robot.robot.description import load_robot
from sac_robot.robot.state import gravity_in_body
from sac_robot.sim.pybullet_robot import PyBulletRobot, SensorNoise

ROBOTS = ["quadruped", "biped"]
SIDE = np.array([math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)])  # rolled 90°: lying on its side


@pytest.fixture(params=ROBOTS)
def robot(request: pytest.FixtureRequest) -> PyBulletRobot:
    sim = PyBulletRobot(load_robot(request.param))
    yield sim
    sim.close()


def test_stands_at_rest_in_home_pose_for_two_seconds(robot: PyBulletRobot) -> None:
    desc = robot.description
    for _ in range(20):  # 2 s at 500 Hz, checked every 0.1 s
        robot.step(50)
        state = robot.state()
        roll, pitch = state.roll_pitch()
        assert abs(roll) < 0.1 and abs(pitch) < 0.1, f"tilted at t={robot.sim_time}"
        assert state.base_position[2] > 0.9 * desc.base_height
        assert np.all(state.foot_contact == 1.0)
    assert robot.sim_time == pytest.approx(2.0)
    np.testing.assert_allclose(state.joint_position, desc.array("home"), atol=0.08)
    assert state.imu_linear_acceleration[2] == pytest.approx(9.81, abs=0.2)
    # exactly the gravity reaction for the (slightly tilted) standing attitude: no spurious acceleration
    np.testing.assert_allclose(state.imu_linear_acceleration, -9.81 * gravity_in_body(state.imu_orientation), atol=0.1)
    np.testing.assert_allclose(state.imu_angular_velocity, 0.0, atol=0.05)
    np.testing.assert_allclose(state.base_linear_velocity, 0.0, atol=0.05)
    assert np.abs(state.joint_velocity).max() < 0.1
    assert state.base_position[2] == pytest.approx(desc.base_height, abs=0.01)
    assert state.stamp == pytest.approx(2.0)
    assert state.is_finite()


def test_imu_reports_tilt_and_free_fall() -> None:
    with PyBulletRobot(load_robot("quadruped")) as sim:
        # At the first step of a drop from 1 m nothing touches the ground: the accelerometer reads ~0.
        sim.reset(base_position=np.array([0.0, 0.0, 1.0]))
        sim.step(1)
        assert np.linalg.norm(sim.state().imu_linear_acceleration) < 0.5
        state = sim.reset(base_orientation=SIDE)
        assert state.roll_pitch()[0] == pytest.approx(math.pi / 2, abs=1e-6)
        sim.step(250)
        acc = sim.state().imu_linear_acceleration  # lying on its left side: gravity reaction along body +y
        assert abs(acc[1]) == pytest.approx(9.81, abs=1.0)
        assert abs(acc[2]) < 2.0


def test_reset_restores_home_after_disturbance(robot: PyBulletRobot) -> None:
    desc = robot.description
    robot.push(np.array([0.0, 150.0, 0.0]), duration_steps=100)
    robot.set_command(desc.array("lower"))
    robot.step(500)
    disturbed = robot.true_state()
    assert np.abs(disturbed.joint_position - desc.array("home")).max() > 0.3
    assert abs(disturbed.base_position[1]) > 0.05

    state = robot.reset()
    assert robot.sim_time == 0.0
    np.testing.assert_allclose(state.joint_position, desc.array("home"), atol=1e-9)
    np.testing.assert_allclose(state.joint_velocity, 0.0, atol=1e-9)
    np.testing.assert_allclose(state.base_position[:2], 0.0, atol=1e-9)
    np.testing.assert_allclose(state.base_linear_velocity, 0.0, atol=1e-9)
    assert np.all(state.foot_contact == 1.0)
    robot.step(500)  # and it holds the home pose again
    after = robot.state()
    assert max(abs(a) for a in after.roll_pitch()) < 0.1
    np.testing.assert_allclose(after.joint_position, desc.array("home"), atol=0.08)


def test_reset_can_lay_the_robot_on_its_side(robot: PyBulletRobot) -> None:
    state = robot.reset(base_orientation=SIDE)
    assert state.base_position[2] < robot.description.base_height  # resting on the plane, not floating
    robot.step(250)
    after = robot.true_state()
    assert abs(after.roll_pitch()[0]) > 1.0  # still lying down
    assert abs(after.base_position[2] - state.base_position[2]) < 0.1  # no drop, no launch


def test_reset_rejects_bad_pose(robot: PyBulletRobot) -> None:
    pose = robot.description.array("upper") + 0.5
    with pytest.raises(ValueError, match="outside the joint limits"):
        robot.reset(pose=pose)
    with pytest.raises(ValueError, match="finite joint angles"):
        robot.reset(pose=np.zeros(3))


def test_fixed_seed_with_noise_is_deterministic() -> None:
    desc = load_robot("quadruped")
    noise = SensorNoise(
        std={
            "joint_position": 0.01,
            "joint_velocity": 0.1,
            "imu_orientation": 0.01,
            "imu_angular_velocity": 0.05,
            "imu_linear_acceleration": 0.2,
            "base_linear_velocity": 0.05,
        },
        bias={"imu_angular_velocity": 0.02},
        dropout=0.2,
        latency_steps=2,
    )
    commands = np.random.default_rng(0).uniform(-0.3, 0.3, (10, 12)) + desc.array("home")

    def rollout(seed: int) -> list[np.ndarray]:
        with PyBulletRobot(desc, sensor_noise=noise, seed=seed) as sim:
            readings = []
            for command in commands:
                sim.set_command(command)
                sim.step(25)
                s = sim.state()
                readings.append(
                    np.concatenate(
                        [
                            s.joint_position,
                            s.joint_velocity,
                            s.imu_orientation,
                            s.imu_angular_velocity,
                            s.imu_linear_acceleration,
                        ]
                    )
                )
            return readings

    first, second, other = rollout(3), rollout(3), rollout(4)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_noise_bias_latency_and_dropout_behave_as_configured() -> None:
    desc = load_robot("quadruped")
    with PyBulletRobot(desc, sensor_noise=SensorNoise(std={"joint_position": 0.05}), seed=1) as sim:
        sim.step(10)
        state, truth = sim.state(), sim.true_state()
        error = state.joint_position - truth.joint_position
        assert 0.0 < np.abs(error).max() < 0.3
        np.testing.assert_array_equal(sim.state().joint_position, state.joint_position)  # same step, same reading
        np.testing.assert_array_equal(state.joint_velocity, truth.joint_velocity)  # other fields untouched

    with PyBulletRobot(desc, sensor_noise=SensorNoise(bias={"imu_angular_velocity": 0.1}), seed=1) as sim:
        sim.step(10)
        np.testing.assert_allclose(sim.state().imu_angular_velocity - sim.true_state().imu_angular_velocity, 0.1)

    with PyBulletRobot(desc, sensor_noise=SensorNoise(latency_steps=5)) as sim:
        sim.set_command(desc.array("home") + 0.2)
        truths = []
        for _ in range(12):
            sim.step(1)
            truths.append(sim.true_state())
        delayed = sim.state()
        np.testing.assert_array_equal(delayed.joint_position, truths[-6].joint_position)
        assert delayed.stamp == pytest.approx(truths[-6].stamp)

    with PyBulletRobot(desc, sensor_noise=SensorNoise(dropout=1.0)) as sim:
        first = sim.state()
        sim.set_command(desc.array("home") + 0.2)
        sim.step(50)  # every later reading is lost: the previous one is repeated
        np.testing.assert_array_equal(sim.state().joint_position, first.joint_position)
        assert not np.allclose(sim.true_state().joint_position, first.joint_position)

    with pytest.raises(ValidationError):
        SensorNoise(std={"joint_position": -1.0})
    with pytest.raises(ValidationError):
        SensorNoise(std={"joint_temperature": 1.0})
    with pytest.raises(ValidationError):
        SensorNoise(dropout=1.5)


def test_effort_limits_are_respected() -> None:
    desc = load_robot("quadruped")
    limit = desc.array("effort")
    with PyBulletRobot(desc, control_mode="effort") as sim:
        command = np.where(np.arange(12) % 2 == 0, 1000.0, -1000.0)
        sim.set_command(command)
        sim.step(5)
        np.testing.assert_allclose(sim.state().joint_effort, np.sign(command) * limit)
    with PyBulletRobot(desc, control_mode="position") as sim:
        sim.set_command(desc.array("upper") + 10.0)  # targets are clipped to the limits, torques to the effort
        sim.step(1)
        assert np.all(np.isclose(np.abs(sim.state().joint_effort), limit)[[1, 2, 4, 5, 7, 8, 10, 11]])  # saturated
        for _ in range(20):
            sim.step(5)
            assert np.all(np.abs(sim.state().joint_effort) <= limit + 1e-9)


def test_safe_mode_only_damps_until_resumed() -> None:
    desc = load_robot("quadruped")
    with PyBulletRobot(desc) as sim:
        sim.set_command(desc.array("lower"))
        sim.step(5)
        sim.safe_mode()
        assert sim.in_safe_mode
        sim.set_command(desc.array("upper"))  # ignored while the deadman is released
        for _ in range(10):
            velocity = sim.true_state().joint_velocity
            sim.step(1)
            expected = np.clip(-desc.array("kd") * velocity, -desc.array("effort"), desc.array("effort"))
            np.testing.assert_allclose(sim.true_state().joint_effort, expected, atol=1e-12)
        sim.resume()
        sim.step(200)
        assert (
            np.abs(sim.true_state().joint_position - desc.array("upper")).max()
            < np.abs(desc.array("lower") - desc.array("upper")).max()
        )
        sim.safe_mode()
        sim.reset()
        assert not sim.in_safe_mode


def test_render_and_independent_clients() -> None:
    desc = load_robot("biped")
    with PyBulletRobot(desc) as first, PyBulletRobot(desc) as second:
        assert first.client._client != second.client._client
        first.push(np.array([0.0, 300.0, 0.0]), 50)
        first.step(100)
        second.step(100)
        assert abs(second.true_state().base_position[1]) < 1e-3  # the push in `first` did not leak
        image = first.render(width=64, height=48)
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert image.std() > 5.0  # a scene, not a blank frame
    with pytest.raises(RuntimeError, match="closed"):
        first.step(1)
    first.close()  # idempotent
