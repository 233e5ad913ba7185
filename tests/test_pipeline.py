import numpy as np
import pytest

from tfl.data import encode_splits, load_corpus, make_dataset, num_windows
from tfl.errors import TflError
from tfl.tokenizers import build_tokenizer


def _all_batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_windows_are_shifted_by_one():
    ids = np.arange(1, 42)
    batches = _all_batches(make_dataset(ids, seq_len=4, global_batch_size=2))
    assert len(batches) == num_windows(41, 4) // 2 == 5
    inputs, targets = batches[0]
    np.testing.assert_array_equal(inputs, [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(targets, [[2, 3, 4, 5], [6, 7, 8, 9]])
    for inputs, targets in batches:
        assert inputs.dtype == np.int32 and inputs.shape == (2, 4)
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])


def test_stride_controls_overlap():
    assert num_windows(10, seq_len=4, stride=1) == 6
    inputs, _ = _all_batches(make_dataset(np.arange(10), 4, 6, stride=1))[0]
    np.testing.assert_array_equal(inputs[:, 0], np.arange(6))


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    ids = np.arange(401)  # 100 windows: 20 full batches per epoch, none dropped

    def two_epochs(seed):
        ds = make_dataset(ids, 4, 5, shuffle=True, seed=seed, repeat=True)
        starts = np.concatenate([x[:, 0] for x, _ in _all_batches(ds.take(40))])
        return starts[:100], starts[100:]

    first, second = two_epochs(7), two_epochs(7)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])
    assert sorted(first[0]) == sorted(first[1]) == list(range(0, 400, 4))
    assert not np.array_equal(two_epochs(8)[0], first[0])


def test_repeat_gives_an_endless_stream_of_full_batches():
    ds = make_dataset(np.arange(30), 4, 3, repeat=True)
    shapes = {tuple(x.shape) for x, _ in ds.take(20)}
    assert shapes == {(3, 4)}


def test_corpus_too_short_for_one_window_or_one_batch():
    with pytest.raises(TflError, match="fewer than one window.*--seq-len"):
        make_dataset(np.arange(5), seq_len=8, global_batch_size=1, split_name="validation")
    with pytest.raises(TflError, match="fewer than one batch.*--batch-size"):
        make_dataset(np.arange(20), seq_len=4, global_batch_size=8)


def test_round_trip_through_the_pipeline_on_a_real_corpus():
    corpus = load_corpus("python_docs")
    tok = build_tokenizer("char", corpus.train)
    ids = encode_splits(corpus, tok)
    assert len(ids["validation"]) == len(corpus.validation)
    inputs, targets = next(iter(make_dataset(ids["train"], 32, 4)))
    assert tok.decode(inputs.numpy()[0]) == corpus.train[:32]
    assert tok.decode(targets.numpy()[0]) == corpus.train[1:33]
