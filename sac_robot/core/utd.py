# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The update-to-data rule, once, for every path: the in-process trainer, the learner node and the
collector that paces a lockstep simulation by the learner's progress.

Training starts when ``learning_starts`` transitions (and at least one batch) are stored; from then on
each stored transition allows ``utd`` gradient updates, the one at ``learning_starts`` included. Of the
``utd`` updates per transition, the last ``actor_updates_per_step`` also update the actor and the
temperature (DroQ and REDQ update the critics more often than the actor).
"""

from __future__ import annotations


def updates_due(stored: int, utd: int, learning_starts: int, batch_size: int) -> int:
    """Gradient updates the UTD ratio allows once ``stored`` transitions are in the replay buffer."""
    if stored < max(learning_starts, batch_size):
        return 0
    return utd * (stored - learning_starts + 1)


def actor_update_due(update_index: int, utd: int, actor_updates_per_step: int | None) -> bool:
    """Whether update number ``update_index`` (from 0) also updates the actor and the temperature."""
    n_actor = actor_updates_per_step or utd
    return update_index % utd >= utd - n_actor
