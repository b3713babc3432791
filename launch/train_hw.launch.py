# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""ros2 launch sac_robot train_hw.launch.py [name:=value ...]; same nodes as `sac-robot launch train_hw`.

Arguments: see docs/launch.md (config, stand_in, run_dir, resume, namespace, start_learner,
start_collector, policy, ...). The nodes come from sac_robot.launch_spec, shared with the CLI.
"""

from sac_robot.launch_description import generate_for


def generate_launch_description():
    return generate_for("train_hw")
