# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""sac_robot: an ament_python package that also installs with plain pip.

* ROS 2 workspace: ``colcon build`` puts the nodes in ``lib/sac_robot/`` (see setup.cfg) and
  launch/, config/ and urdf/ in ``share/sac_robot/``.
* Without a ROS distribution: ``pip install -e ".[ros]"`` takes rclpy and the message packages
  from PyPI and puts ``sac-robot`` and the node commands on the environment's PATH.
"""

from glob import glob

from setuptools import find_namespace_packages, setup

PACKAGE = "sac_robot"


def files(pattern: str) -> list[str]:
    """Files matching a glob, sorted, so that new launch/config/urdf files are picked up."""
    return sorted(glob(pattern))


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Soft Actor-Critic for legged robots over ROS 2",
    license="Apache-2.0",
    maintainer="sac_robot maintainers",
    maintainer_email="sac-robot@example.org",
    python_requires=">=3.10",
    # Namespace-aware so that a subpackage missing its __init__.py still ships.
    packages=find_namespace_packages(include=[PACKAGE, f"{PACKAGE}.*"], exclude=["*.__pycache__"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", files("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", files("config/*.yaml")),
        (f"share/{PACKAGE}/config/robots", files("config/robots/*.yaml")),
        (f"share/{PACKAGE}/urdf", files("urdf/*.urdf")),
    ],
    install_requires=[
        "numpy",
        "pyyaml",
        "pydantic>=2",
        "safetensors",
        # The CPU build lies on this project's machines; an unpinned torch would pull a CUDA build.
        "torch==2.13.0",
        "gymnasium[box2d]",
        "pybullet",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "imageio",
        "imageio-ffmpeg",
    ],
    extras_require={
        # ROS 2 (Kilted) from PyPI; a ROS distribution provides the same packages instead.
        "ros": [
            "ros-rclpy",
            "ros-rmw-fastrtps-cpp",
            "ros-std-msgs",
            "ros-sensor-msgs",
            "ros-geometry-msgs",
            "ros-nav-msgs",
            "ros-std-srvs",
            "ros-diagnostic-msgs",
            "ros-rosgraph-msgs",
            "ros-lifecycle-msgs",
            "ros-ament-index-python",
        ],
        "test": [
            "pytest",
            "pytest-timeout",
            "hypothesis",
            "ruff",
            # test/test_colcon_build.py builds the package as a ROS workspace would.
            "colcon-common-extensions",
            "ros-ament-package",
        ],
        "bench": [
            "stable-baselines3",
        ],
    },
    entry_points={
        "console_scripts": [
            "sac-robot = sac_robot.cli.main:main",
            "learner_node = sac_robot.nodes.learner_node:main",
            "collector_node = sac_robot.nodes.collector_node:main",
            "box2d_stand_in = sac_robot.nodes.box2d_stand_in:main",
            "pybullet_stand_in = sac_robot.nodes.pybullet_stand_in:main",
            "policy_node = sac_robot.nodes.policy_node:main",
        ],
    },
)
