#!/usr/bin/env bash
# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
#
# The BipedalWalker-v3 benchmark through the ROS path (train_sim: Box2D stand-in, collector, learner).
# Resumable: run it again and it continues the run in RUN_DIR from its last checkpoint and replay data.
#   bench/bipedal_walker_ros.sh [RUN_DIR] [TOTAL_STEPS] [SEED]
# Results: RUN_DIR/progress.csv; `sac-robot plot RUN_DIR --out docs/results/...png` draws the curve.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_DIR=${1:-runs/bipedal_walker_ros_seed0}
STEPS=${2:-300000}
SEED=${3:-0}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((100 + SEED))}
RESUME=false
[ -f "$RUN_DIR/config.yaml" ] && RESUME=true
exec .venv/bin/sac-robot launch train_sim config:=bipedal_walker run_dir:="$RUN_DIR" total_steps:="$STEPS" \
  seed:="$SEED" resume:=$RESUME torch_threads:=1
