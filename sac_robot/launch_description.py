# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Turn a job of sac_robot.launch_spec into a ROS 2 LaunchDescription (used by launch/*.launch.py).

Imported only by the launch files, on machines with a ROS distribution (`launch`, `launch_ros`).
"""

from __future__ import annotations

from sac_robot.launch_spec import ARGUMENTS, defaults_for, nodes_for


def generate_for(job: str):
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    def nodes(context, *args, **kwargs):
        given = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGUMENTS}
        return [
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                namespace=spec.namespace,
                parameters=[spec.parameters],
                remappings=spec.remappings,
                output="screen",
                on_exit=_shutdown_if(spec.required),
                # launch sends every node SIGINT at once, SIGTERM after sigterm_timeout and SIGKILL after
                # sigkill_timeout more (5 s each by default): give each node the time its close() needs.
                sigterm_timeout=str(spec.stop_timeout_s),
                sigkill_timeout="5",
            )
            for spec in nodes_for(job, given)
        ]

    defaults = defaults_for(job)
    declared = [
        DeclareLaunchArgument(a.name, default_value=defaults[a.name], description=a.description) for a in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])


def _shutdown_if(required: bool):
    if not required:
        return None
    from launch.actions import Shutdown

    return Shutdown(reason="a required sac_robot node exited")
