# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
