# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Static checks of a URDF and of a robot description against it, with the standard library only.

A bad URDF (a missing limit, a joint pointing at a link that does not exist, a non-physical inertia)
otherwise shows up as a simulator that silently ignores the limit or explodes at the first step, or
as a real robot commanded past its hardware limits. These checks fail early and name the culprit.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sac_robot.robot.description import RobotDescription

JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed", "floating", "planar")
ACTUATED_TYPES = ("revolute", "continuous", "prismatic")
LIMITED_TYPES = ("revolute", "prismatic")


class UrdfError(ValueError):
    """A URDF (or a description checked against it) is unusable; the message names the joint or link."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


@dataclass(frozen=True)
class JointInfo:
    """One URDF joint as parsed; limits are None where the URDF gives none (fixed, continuous)."""

    name: str
    type: str
    parent: str
    child: str
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    lower: float | None = None
    upper: float | None = None
    effort: float | None = None
    velocity: float | None = None


@dataclass(frozen=True)
class LinkInfo:
    """One URDF link; mass is None for links without <inertial>."""

    name: str
    mass: float | None = None
    inertia: np.ndarray | None = field(default=None, compare=False)  # 3x3, inertial frame


@dataclass(frozen=True)
class UrdfInfo:
    """What the rest of the stack needs to know about a checked URDF."""

    robot_name: str
    root_link: str
    links: dict[str, LinkInfo]
    joints: dict[str, JointInfo]  # in document order

    @property
    def actuated_joints(self) -> list[str]:
        """Movable joints in document order: the default joint order of a robot description."""
        return [j.name for j in self.joints.values() if j.type in ACTUATED_TYPES]

    @property
    def total_mass(self) -> float:
        return float(sum(link.mass or 0.0 for link in self.links.values()))


def _float(element: ET.Element, attr: str, default: float | None, what: str) -> float | None:
    raw = element.get(attr)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as err:
        raise UrdfError(f"{what}: attribute {attr}={raw!r} is not a number") from err
    if not math.isfinite(value):
        raise UrdfError(f"{what}: attribute {attr}={raw!r} is not finite")
    return value


def _parse_link(element: ET.Element) -> LinkInfo:
    name = element.get("name")
    if not name:
        raise UrdfError("a <link> has no name")
    inertial = element.find("inertial")
    if inertial is None:
        return LinkInfo(name)
    mass_el = inertial.find("mass")
    if mass_el is None:
        raise UrdfError(f"link {name!r}: <inertial> without <mass>")
    mass = _float(mass_el, "value", None, f"link {name!r} mass")
    if mass is None or mass <= 0.0:
        raise UrdfError(f"link {name!r}: mass must be positive, got {mass}")
    inertia_el = inertial.find("inertia")
    if inertia_el is None:
        raise UrdfError(f"link {name!r}: <inertial> without <inertia>")
    what = f"link {name!r} inertia"
    ixx, ixy, ixz, iyy, iyz, izz = (
        _float(inertia_el, key, 0.0, what) for key in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")
    )
    inertia = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]], dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(inertia)
    if eigenvalues.min() <= 0.0:
        raise UrdfError(f"link {name!r}: inertia is not positive definite (eigenvalues {eigenvalues.tolist()})")
    # A rigid body's principal moments obey the triangle inequality; violating it means a typo, not a shape.
    a, b, c = eigenvalues
    if a + b < c * (1.0 - 1e-6):
        raise UrdfError(f"link {name!r}: principal inertias {eigenvalues.tolist()} violate the triangle inequality")
    return LinkInfo(name, mass, inertia)


def _parse_joint(element: ET.Element) -> JointInfo:
    name = element.get("name")
    if not name:
        raise UrdfError("a <joint> has no name")
    jtype = element.get("type", "")
    if jtype not in JOINT_TYPES:
        raise UrdfError(f"joint {name!r}: unknown type {jtype!r}")
    parent_el, child_el = element.find("parent"), element.find("child")
    parent = parent_el.get("link") if parent_el is not None else None
    child = child_el.get("link") if child_el is not None else None
    if not parent or not child:
        raise UrdfError(f"joint {name!r}: needs <parent link=...> and <child link=...>")
    axis_el = element.find("axis")
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    if axis_el is not None:
        try:
            values = tuple(float(v) for v in axis_el.get("xyz", "1 0 0").split())
        except ValueError as err:
            raise UrdfError(f"joint {name!r}: axis is not three numbers") from err
        if len(values) != 3 or not np.all(np.isfinite(values)) or np.linalg.norm(values) < 1e-9:
            raise UrdfError(f"joint {name!r}: axis must be three finite numbers, not all zero")
        axis = (values[0], values[1], values[2])
    limit_el = element.find("limit")
    if jtype in LIMITED_TYPES and limit_el is None:
        raise UrdfError(f"joint {name!r}: {jtype} joint has no <limit>")
    lower = upper = effort = velocity = None
    if limit_el is not None:
        what = f"joint {name!r} limit"
        effort = _float(limit_el, "effort", None, what)
        velocity = _float(limit_el, "velocity", None, what)
        if jtype in LIMITED_TYPES:
            # The URDF spec defaults lower/upper to 0, which makes a joint that cannot move: reject it.
            lower = _float(limit_el, "lower", 0.0, what)
            upper = _float(limit_el, "upper", 0.0, what)
            if not lower < upper:
                raise UrdfError(f"joint {name!r}: limit lower ({lower}) must be below upper ({upper})")
    if jtype in ACTUATED_TYPES and limit_el is not None:  # continuous joints may omit <limit>
        if effort is None or effort <= 0.0:
            raise UrdfError(f"joint {name!r}: limit effort must be positive, got {effort}")
        if velocity is None or velocity <= 0.0:
            raise UrdfError(f"joint {name!r}: limit velocity must be positive, got {velocity}")
    return JointInfo(name, jtype, parent, child, axis, lower, upper, effort, velocity)


def check_urdf(path: str | Path) -> UrdfInfo:
    """Parse and validate a URDF; raise UrdfError naming the first bad joint or link."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise UrdfError(f"{path}: cannot read URDF: {err}") from err
    if root.tag != "robot":
        raise UrdfError(f"{path}: root element is <{root.tag}>, expected <robot>")

    links: dict[str, LinkInfo] = {}
    for element in root.findall("link"):
        link = _parse_link(element)
        if link.name in links:
            raise UrdfError(f"link {link.name!r} is defined twice")
        links[link.name] = link
    if not links:
        raise UrdfError(f"{path}: no <link> elements")

    joints: dict[str, JointInfo] = {}
    parent_joint: dict[str, str] = {}  # child link -> joint
    for element in root.findall("joint"):
        joint = _parse_joint(element)
        if joint.name in joints:
            raise UrdfError(f"joint {joint.name!r} is defined twice")
        for role, link_name in (("parent", joint.parent), ("child", joint.child)):
            if link_name not in links:
                raise UrdfError(f"joint {joint.name!r}: {role} link {link_name!r} does not exist")
        if joint.parent == joint.child:
            raise UrdfError(f"joint {joint.name!r}: link {joint.child!r} is its own parent (cycle)")
        if joint.child in parent_joint:
            raise UrdfError(
                f"joint {joint.name!r}: link {joint.child!r} already has parent joint "
                f"{parent_joint[joint.child]!r} (a link may have one parent)"
            )
        parent_joint[joint.child] = joint.name
        joints[joint.name] = joint

    roots = [name for name in links if name not in parent_joint]
    children: dict[str, list[str]] = {name: [] for name in links}
    for joint in joints.values():
        children[joint.parent].append(joint.child)
    reached: set[str] = set()
    stack = list(roots[:1])
    while stack:
        name = stack.pop()
        reached.add(name)
        stack.extend(children[name])
    unreached = [name for name in links if name not in reached]
    cycle_joints = sorted(parent_joint[name] for name in unreached if name in parent_joint)
    if cycle_joints:
        raise UrdfError(f"joints {cycle_joints} form a cycle (links {sorted(unreached)} are not reachable from a root)")
    if len(roots) != 1:
        raise UrdfError(f"{path}: expected one root link, found {sorted(roots)}")
    return UrdfInfo(root.get("name", ""), roots[0], links, joints)


def description_problems(desc: RobotDescription, info: UrdfInfo) -> list[str]:
    """Every mismatch between a robot description and its URDF, one line each (empty when they agree)."""
    problems: list[str] = []
    if desc.base_link != info.root_link:
        problems.append(f"base_link {desc.base_link!r} is not the URDF's root link {info.root_link!r}")
    if desc.imu_link not in info.links:
        problems.append(f"imu_link {desc.imu_link!r} is not a link of the URDF")
    for foot in desc.feet:
        if foot not in info.links:
            problems.append(f"foot {foot!r} is not a link of the URDF")
    tol = 1e-9
    for spec in desc.joints:
        joint = info.joints.get(spec.name)
        if joint is None:
            problems.append(f"joint {spec.name!r} is not in the URDF")
            continue
        if joint.type not in ACTUATED_TYPES:
            problems.append(f"joint {spec.name!r} is {joint.type} in the URDF, not actuated")
            continue
        if joint.lower is not None and spec.lower < joint.lower - tol:
            problems.append(f"joint {spec.name!r}: lower {spec.lower} is below the URDF's {joint.lower}")
        if joint.upper is not None and spec.upper > joint.upper + tol:
            problems.append(f"joint {spec.name!r}: upper {spec.upper} is above the URDF's {joint.upper}")
        if joint.effort is not None and spec.effort > joint.effort + tol:
            problems.append(f"joint {spec.name!r}: effort {spec.effort} exceeds the URDF's {joint.effort}")
        if joint.velocity is not None and spec.velocity > joint.velocity + tol:
            problems.append(f"joint {spec.name!r}: velocity {spec.velocity} exceeds the URDF's {joint.velocity}")
    return problems


def check_description_against_urdf(desc: RobotDescription, info: UrdfInfo) -> None:
    """Raise UrdfError listing every mismatch, so a YAML can never command beyond what the URDF allows."""
    problems = description_problems(desc, info)
    if problems:
        raise UrdfError(f"robot {desc.name!r} does not match its URDF: " + "; ".join(problems), problems)
