# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The packaged URDFs are physically sane and agree with their YAML; broken URDFs are rejected by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet
import pytest

from sac_robot.robot.description import load_robot
from sac_robot.sim.urdf_check import UrdfError, check_description_against_urdf, check_urdf, description_problems

ROBOTS = ["quadruped", "biped"]


@pytest.mark.parametrize("name", ROBOTS)
def test_packaged_urdf_passes_checks_and_matches_yaml(name: str) -> None:
    desc = load_robot(name)
    info = check_urdf(desc.urdf_path())
    assert info.actuated_joints == desc.joint_names  # YAML joint order is the URDF's
    assert info.root_link == desc.base_link
    check_description_against_urdf(desc, info)  # raises on any mismatch
    assert 10.0 <= info.total_mass <= 15.0
    for spec in desc.joints:  # YAML limits equal the URDF's, not merely inside them
        joint = info.joints[spec.name]
        assert (joint.lower, joint.upper, joint.effort, joint.velocity) == pytest.approx(
            (spec.lower, spec.upper, spec.effort, spec.velocity)
        )


def test_quadruped_layout() -> None:
    info = check_urdf(load_robot("quadruped").urdf_path())
    legs = ["FL", "FR", "RL", "RR"]
    assert info.actuated_joints == [f"{leg}_{part}_joint" for leg in legs for part in ("hip", "thigh", "calf")]
    for leg in legs:
        assert info.joints[f"{leg}_hip_joint"].axis == (1.0, 0.0, 0.0)
        assert info.joints[f"{leg}_thigh_joint"].axis == (0.0, 1.0, 0.0)
        assert info.joints[f"{leg}_calf_joint"].axis == (0.0, 1.0, 0.0)
        foot_joint = next(j for j in info.joints.values() if j.child == f"{leg}_foot")
        assert foot_joint.type == "fixed"
        assert info.joints[f"{leg}_hip_joint"].effort == pytest.approx(33.5)
    assert next(j for j in info.joints.values() if j.child == "imu_link").type == "fixed"
    assert 6.0 <= info.links["trunk"].mass <= 7.0


@pytest.mark.parametrize("name", ROBOTS)
def test_urdf_loads_in_pybullet_with_the_right_joints(name: str) -> None:
    desc = load_robot(name)
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(desc.urdf_path()), physicsClientId=client)
        infos = [
            pybullet.getJointInfo(body, i, physicsClientId=client)
            for i in range(pybullet.getNumJoints(body, physicsClientId=client))
        ]
        revolute = [i[1].decode() for i in infos if i[2] == pybullet.JOINT_REVOLUTE]
        links = {i[12].decode() for i in infos}
        assert revolute == desc.joint_names
        assert {desc.imu_link, *desc.feet} <= links
        for i in infos:
            if i[2] == pybullet.JOINT_REVOLUTE:
                spec = desc.joints[desc.joint_names.index(i[1].decode())]
                assert (i[8], i[9], i[10], i[11]) == pytest.approx((spec.lower, spec.upper, spec.effort, spec.velocity))
    finally:
        pybullet.disconnect(client)


# ---------------------------------------------------------------- broken URDFs

LINK = '<link name="{name}"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01"/></inertial></link>'
JOINT = (
    '<joint name="{name}" type="revolute"><parent link="{parent}"/><child link="{child}"/>'
    '<axis xyz="0 1 0"/>{limit}</joint>'
)
LIMIT = '<limit lower="-1" upper="1" effort="10" velocity="5"/>'


def write_urdf(tmp_path: Path, links: list[str], joints: list[tuple[str, str, str, str]]) -> Path:
    body = "".join(LINK.format(name=n) for n in links)
    body += "".join(JOINT.format(name=n, parent=p, child=c, limit=lim) for n, p, c, lim in joints)
    path = tmp_path / "robot.urdf"
    path.write_text(f'<?xml version="1.0"?><robot name="t">{body}</robot>', encoding="utf-8")
    return path


def test_minimal_valid_urdf(tmp_path: Path) -> None:
    info = check_urdf(write_urdf(tmp_path, ["base", "leg"], [("knee", "base", "leg", LIMIT)]))
    assert info.root_link == "base" and info.actuated_joints == ["knee"]


@pytest.mark.parametrize(
    ("limit", "fragment"),
    [
        ("", "no <limit>"),
        ('<limit lower="1" upper="-1" effort="10" velocity="5"/>', "lower"),
        ('<limit lower="0.5" upper="0.5" effort="10" velocity="5"/>', "lower"),
        ('<limit lower="-1" upper="1" effort="0" velocity="5"/>', "effort"),
        ('<limit lower="-1" upper="1" effort="10"/>', "velocity"),
        ('<limit lower="-1" upper="one" effort="10" velocity="5"/>', "upper"),
    ],
)
def test_bad_joint_limit_is_rejected_naming_the_joint(tmp_path: Path, limit: str, fragment: str) -> None:
    path = write_urdf(
        tmp_path, ["base", "thigh", "shin"], [("hip", "base", "thigh", LIMIT), ("knee", "thigh", "shin", limit)]
    )
    with pytest.raises(UrdfError, match=fragment) as err:
        check_urdf(path)
    assert "'knee'" in str(err.value)


def test_cycle_is_rejected_naming_the_joints(tmp_path: Path) -> None:
    path = write_urdf(tmp_path, ["base", "a", "b"], [("j_ab", "a", "b", LIMIT), ("j_ba", "b", "a", LIMIT)])
    with pytest.raises(UrdfError, match="cycle") as err:
        check_urdf(path)
    assert "j_ab" in str(err.value) and "j_ba" in str(err.value)


def test_link_with_two_parents_is_rejected(tmp_path: Path) -> None:
    path = write_urdf(
        tmp_path, ["base", "a", "b"], [("j1", "base", "a", LIMIT), ("j2", "a", "b", LIMIT), ("j3", "base", "b", LIMIT)]
    )
    with pytest.raises(UrdfError, match="'j3'.*'b'.*already has parent joint 'j2'"):
        check_urdf(path)


def test_missing_link_and_two_roots_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(UrdfError, match="'hip'.*child link 'ghost' does not exist"):
        check_urdf(write_urdf(tmp_path, ["base"], [("hip", "base", "ghost", LIMIT)]))
    with pytest.raises(UrdfError, match="one root link"):
        check_urdf(write_urdf(tmp_path, ["base", "leg", "stray"], [("hip", "base", "leg", LIMIT)]))


@pytest.mark.parametrize(
    "inertial",
    [
        '<mass value="0"/><inertia ixx="0.01" iyy="0.01" izz="0.01"/>',
        '<mass value="1"/><inertia ixx="0.01" iyy="-0.01" izz="0.01"/>',
        '<mass value="1"/><inertia ixx="0.01" ixy="0.02" iyy="0.01" izz="0.01"/>',
        '<mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.05"/>',
    ],
)
def test_non_physical_inertial_is_rejected_naming_the_link(tmp_path: Path, inertial: str) -> None:
    path = tmp_path / "robot.urdf"
    path.write_text(
        f'<robot name="t"><link name="base"/><link name="heavy"><inertial>{inertial}</inertial></link>'
        + JOINT.format(name="hip", parent="base", child="heavy", limit=LIMIT)
        + "</robot>",
        encoding="utf-8",
    )
    with pytest.raises(UrdfError, match="'heavy'"):
        check_urdf(path)


def test_description_mismatches_are_all_named() -> None:
    desc = load_robot("quadruped")
    info = check_urdf(desc.urdf_path())
    joints = list(desc.joints)
    joints[1] = joints[1].model_copy(update={"upper": joints[1].upper + 0.5})  # FL_thigh beyond the URDF
    joints[2] = joints[2].model_copy(update={"effort": 50.0})  # FL_calf stronger than the URDF
    joints[3] = joints[3].model_copy(update={"name": "FR_wheel_joint"})  # not in the URDF
    bad = desc.model_copy(update={"joints": joints, "imu_link": "imu", "feet": ["FL_foot", "FL_toe"]})
    problems = description_problems(bad, info)
    text = "\n".join(problems)
    for fragment in (
        "'FL_thigh_joint': upper",
        "'FL_calf_joint': effort",
        "'FR_wheel_joint' is not in the URDF",
        "imu_link 'imu'",
        "foot 'FL_toe'",
    ):
        assert fragment in text
    assert len(problems) == 5
    with pytest.raises(UrdfError) as err:
        check_description_against_urdf(bad, info)
    assert err.value.problems == problems
    # Narrower YAML limits than the hardware's are fine: the safety layer may be stricter.
    joints = list(desc.joints)
    joints[0] = joints[0].model_copy(update={"lower": -0.5, "upper": 0.5, "effort": 20.0})
    check_description_against_urdf(desc.model_copy(update={"joints": joints}), info)
    assert np.isclose(info.links["trunk"].inertia[0, 0], 6.0 / 12 * (0.2**2 + 0.11**2))
