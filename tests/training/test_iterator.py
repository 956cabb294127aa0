"""Sampler and EpochIterator: which samples each step reads."""
import numpy as np

from tidu.training import EpochIterator, Sampler


def test_every_pass_of_the_sampler_is_a_permutation_of_its_indices():
    idx = np.array([3, 7, 8, 20, 21])
    s = Sampler(idx, 2, shuffle=True, rng=np.random.default_rng(0))
    passes = [np.concatenate([s.next() for _ in range(3)]) for _ in range(4)]
    for p in passes:
        assert sorted(p) == list(idx)
    assert any(not np.array_equal(passes[0], p) for p in passes[1:])


def test_sampler_state_round_trip_continues_identically():
    a = Sampler(50, 8, rng=np.random.default_rng(1))
    for _ in range(9):
        a.next()
    arrays, meta = a.get_state()
    b = Sampler(50, 8, rng=np.random.default_rng(99))
    b.set_state(arrays, meta)
    for _ in range(20):
        np.testing.assert_array_equal(a.next(), b.next())


def test_unshuffled_epochs_are_slices_in_order():
    it = EpochIterator(10, 4, shuffle=False)
    assert it.begin(0) == 3
    x, y = np.arange(10), np.arange(10) * 2
    batches = [it.batch(k, x, y)[0] for k in range(3)]
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(10))


def test_shuffled_epochs_record_the_generator_before_drawing():
    rng = np.random.default_rng(3)
    it = EpochIterator(10, 4, shuffle=True, rng=rng)
    it.begin(0)
    again = np.random.default_rng(3).permutation(10)
    np.testing.assert_array_equal(it.order, again)
    assert it.epoch_rng["bit_generator"] == "PCG64"


def test_steps_per_epoch_run_one_stream_across_epochs():
    it = EpochIterator(10, 4, shuffle=False, steps_per_epoch=2)
    seen = []
    for epoch in range(3):
        for k in range(it.begin(epoch)):
            seen.append(it.indices(k))
    # 4 + 4 + 2 (a pass ends short) + 4 + 4 + 2: six steps over three epochs are two passes
    assert [len(s) for s in seen] == [4, 4, 2, 4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(seen), np.tile(np.arange(10), 2))


def test_curriculum_epochs_widen_from_the_easiest():
    scores = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0])
    it = EpochIterator(6, 2, shuffle=True, scores=scores,
                       pacing={"start_fraction": 0.5, "epochs_to_full": 2})
    first = it.begin(0)
    assert first == 2 and sorted(it.order) == [1, 3, 5]
    it.begin(5)
    assert len(it.order) == 6


def test_augment_is_applied_to_each_batch_with_the_iterator_generator():
    calls = []
    it = EpochIterator(4, 2, shuffle=False, rng=np.random.default_rng(0),
                       augment=lambda xb, rng: calls.append(rng) or xb * 2.0)
    it.begin(0)
    xb, _, _ = it.batch(0, np.ones((4, 3), dtype=np.float32), np.zeros(4))
    assert xb.dtype == np.float32 and (xb == 2).all() and calls == [it.rng]
