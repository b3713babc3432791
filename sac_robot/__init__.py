# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""sac_robot: Soft Actor-Critic for legged robots over ROS 2."""

__version__ = "0.1.0"
