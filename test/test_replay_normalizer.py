# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The replay buffer keeps the right transitions, persists and restores them exactly; the normaliser's statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sac_robot.core.atomic_io import CorruptFileError
from sac_robot.core.normalizer import RunningNormalizer
from sac_robot.core.replay import FIELDS, ChunkStore, ReplayBuffer

OBS, ACT = 3, 2


def transition(i: int) -> dict[str, np.ndarray]:
    """Transition number i, every field derived from i so a slot's contents say where it came from."""
    return {
        "obs": np.full(OBS, i, np.float32) + np.arange(OBS, dtype=np.float32) / 10,
        "action": np.full(ACT, -i, np.float32),
        "reward": np.float32(i + 0.5),
        "next_obs": np.full(OBS, i + 1, np.float32),
        "terminated": np.float32(i % 3 == 0),
        "truncated": np.float32(i % 4 == 0),
        "intervened": np.float32(i % 5 == 0),
    }


def batch_of(indices) -> dict[str, np.ndarray]:
    ts = [transition(i) for i in indices]
    return {name: np.stack([t[name] for t in ts]).astype(np.float32) for name in FIELDS}


def add(buf: ReplayBuffer, i: int) -> None:
    t = transition(i)
    buf.add(t["obs"], t["action"], t["reward"], t["next_obs"], bool(t["terminated"]), bool(t["truncated"]),
            bool(t["intervened"]))  # fmt: skip


def assert_slot_holds(buf: ReplayBuffer, slot: int, i: int) -> None:
    t = transition(i)
    for name in FIELDS:
        np.testing.assert_array_equal(buf.data[name][slot], t[name], err_msg=f"slot {slot} field {name}")


# --- ring buffer --------------------------------------------------------------------------------
def test_wrap_around_keeps_the_newest_at_their_slots():
    buf = ReplayBuffer(5, OBS, ACT)
    for i in range(12):
        add(buf, i)
    assert buf.total == 12
    assert len(buf) == 5
    for i in range(7, 12):  # the 5 newest, at global index mod capacity
        assert_slot_holds(buf, i % 5, i)


def test_add_batch_wraps_across_the_end():
    buf = ReplayBuffer(5, OBS, ACT)
    for i in range(3):
        add(buf, i)
    buf.add_batch(batch_of(range(3, 7)))  # slots 3, 4, then 0, 1
    assert buf.total == 7 and len(buf) == 5
    for i in range(2, 7):
        assert_slot_holds(buf, i % 5, i)


def test_add_batch_larger_than_capacity_keeps_the_newest():
    buf = ReplayBuffer(5, OBS, ACT)
    for i in range(3):
        add(buf, i)
    buf.add_batch(batch_of(range(3, 14)))
    assert buf.total == 14 and len(buf) == 5
    for i in range(9, 14):
        assert_slot_holds(buf, i % 5, i)


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 9), sizes=st.lists(st.integers(0, 12), min_size=1, max_size=8))
def test_add_batch_equals_adding_one_by_one(capacity, sizes):
    one, many = ReplayBuffer(capacity, OBS, ACT), ReplayBuffer(capacity, OBS, ACT)
    start = 0
    for n in sizes:
        for i in range(start, start + n):
            add(one, i)
        many.add_batch(batch_of(range(start, start + n)) if n else {k: v[:0] for k, v in batch_of([0]).items()})
        start += n
    assert many.total == one.total == start
    for name in FIELDS:
        np.testing.assert_array_equal(many.data[name], one.data[name])


def test_add_batch_rejects_ragged_fields():
    buf = ReplayBuffer(5, OBS, ACT)
    batch = batch_of(range(3))
    batch["action"] = batch["action"][:2]
    with pytest.raises(ValueError, match="action"):
        buf.add_batch(batch)


def test_sample_only_returns_stored_transitions():
    buf = ReplayBuffer(10, OBS, ACT)
    for i in range(1, 4):  # slots 3..9 stay zero and must never be sampled
        add(buf, i)
    s = buf.sample(2000, np.random.default_rng(0))
    assert set(s) == set(FIELDS)
    assert s["obs"].shape == (2000, OBS) and s["action"].shape == (2000, ACT) and s["reward"].shape == (2000,)
    assert set(np.unique(s["reward"])) == {1.5, 2.5, 3.5}
    for k in range(2000):  # every field of a sampled row comes from the same transition
        i = int(s["reward"][k] - 0.5)
        np.testing.assert_array_equal(s["next_obs"][k], transition(i)["next_obs"])
        np.testing.assert_array_equal(s["action"][k], transition(i)["action"])
    with pytest.raises(ValueError):
        ReplayBuffer(4, OBS, ACT).sample(1, np.random.default_rng(0))


def test_sample_after_wrap_covers_only_the_held_window():
    buf = ReplayBuffer(5, OBS, ACT)
    for i in range(12):
        add(buf, i)
    s = buf.sample(1000, np.random.default_rng(1))
    assert set(np.unique(s["reward"])) == {i + 0.5 for i in range(7, 12)}


# --- persistence --------------------------------------------------------------------------------
def fill_and_persist(store: ChunkStore, n: int, capacity: int = 5, chunk_size: int = 3) -> ReplayBuffer:
    """Add one at a time and persist full chunks as they fill, as the trainer does; then the tail."""
    buf = ReplayBuffer(capacity, OBS, ACT)
    for i in range(n):
        add(buf, i)
        buf.persist(store, chunk_size)
    buf.persist(store, chunk_size, final=True)
    assert buf.persisted == n
    return buf


@pytest.mark.parametrize("n", [4, 12])  # without and with wrap-around
def test_persist_then_restore_gives_identical_arrays(tmp_path, n):
    store = ChunkStore(tmp_path / "replay")
    buf = fill_and_persist(store, n)
    restored = ReplayBuffer(5, OBS, ACT)
    restored.restore(ChunkStore(tmp_path / "replay"))
    assert restored.total == buf.total == n
    assert restored.persisted == n
    assert len(restored) == len(buf)
    for name in FIELDS:
        np.testing.assert_array_equal(restored.data[name], buf.data[name], err_msg=name)
        assert restored.data[name].dtype == np.float32


def test_restore_into_a_larger_buffer_holds_everything_persisted(tmp_path):
    store = ChunkStore(tmp_path)
    fill_and_persist(store, 12)
    big = ReplayBuffer(20, OBS, ACT)
    big.restore(store)
    assert big.total == 12
    for i in range(12):
        assert_slot_holds(big, i, i)


def test_restore_upto_truncates(tmp_path):
    store = ChunkStore(tmp_path)
    fill_and_persist(store, 12, capacity=20)  # chunks start at 0, 3, 6, 9
    restored = ReplayBuffer(20, OBS, ACT)
    restored.restore(store, upto=7)
    assert restored.total == 7 and restored.persisted == 7
    for i in range(7):
        assert_slot_holds(restored, i, i)
    assert (restored.data["reward"][7:] == 0).all()
    # the store now holds exactly the first 7 transitions: later chunks gone, the straddling one cut
    assert sum(c.count for c in store.chunks()) == 7
    assert max(c.stop for c in store.chunks()) == 7
    again = ReplayBuffer(20, OBS, ACT)
    again.restore(store)
    assert again.total == 7
    for name in FIELDS:
        np.testing.assert_array_equal(again.data[name], restored.data[name])


def test_restore_upto_beyond_what_is_stored_fails(tmp_path):
    store = ChunkStore(tmp_path)
    fill_and_persist(store, 6)
    with pytest.raises(CorruptFileError, match="expects 9"):
        ReplayBuffer(20, OBS, ACT).restore(store, upto=9)


def flip_byte(path, offset_from_end: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["body", "header"])
def test_corrupt_chunk_raises_naming_the_path_and_is_set_aside(tmp_path, where):
    store = ChunkStore(tmp_path / "replay")
    fill_and_persist(store, 9)  # chunks at 0, 3, 6
    victim = next(c for c in store.chunks() if c.start == 3).path
    if where == "body":
        flip_byte(victim)
    else:
        data = bytearray(victim.read_bytes())
        data[20] ^= 0xFF  # inside the JSON header
        victim.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError) as info:
        ReplayBuffer(20, OBS, ACT).restore(store)
    assert str(victim) in str(info.value)
    assert not victim.exists()
    assert victim.with_suffix(".corrupt").is_file()
    # the set-aside file is no longer taken for a chunk; the gap it leaves is reported, not papered over
    assert all(c.start != 3 for c in store.chunks())
    with pytest.raises(CorruptFileError, match="not contiguous"):
        ReplayBuffer(20, OBS, ACT).restore(store)


# --- normaliser ---------------------------------------------------------------------------------
def test_normalizer_matches_numpy_over_batches_of_different_sizes():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[1.0, -5.0, 100.0], scale=[0.1, 3.0, 20.0], size=(n, 3)) for n in (1, 7, 64, 3, 250)]
    batches.insert(2, rng.normal(size=3))  # a single observation, no batch axis
    norm = RunningNormalizer(3)
    for b in batches:
        norm.update(b)
    everything = np.concatenate([np.atleast_2d(b) for b in batches])
    assert norm.count == len(everything)
    np.testing.assert_allclose(norm.mean, everything.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norm.var, everything.var(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(norm.std, np.sqrt(everything.var(axis=0) + 1e-8), rtol=1e-9)
    x = everything[5]
    np.testing.assert_allclose(
        norm.normalize(x), np.clip((x - everything.mean(0)) / everything.std(0), -10, 10), rtol=1e-4, atol=1e-5
    )
    assert norm.normalize(x).dtype == np.float32
    far = everything.mean(0) + 1e6
    assert np.all(norm.normalize(far) == 10.0)  # clipped


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_normalizer_rejects_non_finite_updates(bad):
    norm = RunningNormalizer(3)
    norm.update(np.ones((4, 3)))
    before = norm.state_dict()
    batch = np.zeros((5, 3))
    batch[2, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        norm.update(batch)
    after = norm.state_dict()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_normalizer_state_dict_round_trip():
    rng = np.random.default_rng(1)
    norm = RunningNormalizer(4)
    norm.update(rng.normal(size=(30, 4)) * 5 + 2)
    state = norm.state_dict()
    state_copy = {k: v.copy() for k, v in state.items()}
    norm.update(rng.normal(size=(10, 4)))  # must not alias the returned state
    for k in state:
        np.testing.assert_array_equal(state[k], state_copy[k])
    other = RunningNormalizer(4)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.mean, state["mean"])
    np.testing.assert_array_equal(other.var, state["var"])
    assert other.count == 30
    x = rng.normal(size=4)
    expected = np.clip((x - state_copy["mean"]) / np.sqrt(state_copy["var"] + 1e-8), -10, 10).astype(np.float32)
    np.testing.assert_allclose(other.normalize(x), expected, rtol=1e-6)
    other.update(np.zeros((10, 4)))  # continues from the loaded count, not from scratch
    assert other.count == 40
    with pytest.raises(ValueError, match="shape"):
        RunningNormalizer(3).load_state_dict(state)


def test_disabled_normalizer_is_identity():
    norm = RunningNormalizer(3, enabled=False)
    norm.update(np.random.default_rng(2).normal(loc=50, scale=9, size=(20, 3)))
    x = np.array([123.0, -4.5, 1e6])
    np.testing.assert_array_equal(norm.normalize(x), x.astype(np.float32))
    mean, std = norm.frozen()
    np.testing.assert_array_equal(mean, np.zeros(3, np.float32))
    np.testing.assert_array_equal(std, np.ones(3, np.float32))
