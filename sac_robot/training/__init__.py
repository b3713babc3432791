# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Training loops and what they write into a run directory."""
