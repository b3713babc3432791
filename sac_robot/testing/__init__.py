# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests and benchmarks that run the nodes as processes (not used by the package itself)."""
