"""jamba_min.data: the corpus is the same everywhere, and every task scores what it says."""

import hashlib

import pytest
import torch

from jamba_min import data

IGNORE = data.IGNORE_INDEX


def test_corpus_bytes_are_pinned():
    """The corpus draws only from random.Random.random, fixed across Python versions: any change
    to these bytes changes every result trained on it, so it must be deliberate."""
    text = data.corpus()
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "bfe57447fd8f6f93"
    assert text.count("\n") == 2000 and text.isascii()
    assert data.corpus(5, seed=1) != data.corpus(5, seed=0)


def test_byte_tokenizer_round_trip():
    tok = data.ByteTokenizer()
    text = "Jamba: Δ, B, C"
    ids = tok.encode(text)
    assert len(ids) == len(text.encode()) and max(ids) < 256
    assert tok.decode(ids) == text == tok.decode(torch.tensor(ids))
    assert tok.decode([0xE2, 0x82]) == "\ufffd"  # a cut multi-byte character does not raise
    with pytest.raises(ValueError, match=r"ids must be ints in \[0, 256\)"):
        tok.decode([300])


def test_text_windows_are_shifted_by_one():
    x, y = data.text_windows("abcdefghij" * 3, 4, 8, seed=3)
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="at least seq_len \\+ 1"):
        data.text_windows("abc", 1, 8)


def test_selective_copying():
    x, y = data.selective_copying(64, 40, 6, 12, seed=0)
    sep = 40 - 6 - 1
    assert (x[:, sep] == 1).all()
    for row, lab in zip(x, y, strict=True):
        scattered = row[:sep][row[:sep] != 0]
        assert torch.equal(scattered, row[sep + 1 :])  # the data, in order, after the separator
        assert torch.equal(lab[sep:-1], row[sep + 1 :])
        assert (lab[:sep] == IGNORE).all() and lab[-1] == IGNORE


def test_induction_heads():
    x, y = data.induction_heads(64, 30, 10, seed=0)
    assert (x[:, -1] == 1).all() and ((x == 1).sum(1) == 2).all()
    for row, lab in zip(x, y, strict=True):
        first = (row == 1).nonzero()[0, 0]
        assert lab[-1] == row[first + 1] and (lab[:-1] == IGNORE).all()


def test_mqar_matches_zoology_layout():
    p, V = 5, 40
    x, y = data.mqar(64, 48, p, V, seed=0)
    for row, lab in zip(x, y, strict=True):
        keys, values = row[0 : 2 * p : 2], row[1 : 2 * p : 2]
        assert ((keys >= 1) & (keys < V // 2)).all() and len(set(keys.tolist())) == p
        assert ((values >= V // 2) & (values < V)).all()
        scored = (lab != IGNORE).nonzero().flatten()
        assert len(scored) == p and (scored >= 2 * p).all()
        value_of = dict(zip(keys.tolist(), values.tolist(), strict=True))
        for t in scored.tolist():
            assert lab[t] == value_of[row[t].item()] == row[t + 1]


def test_mqar_queries_come_soon_after_the_pairs():
    _, y = data.mqar(2000, 256, 4, 64, seed=0)
    first_slots = ((y != IGNORE).nonzero()[:, 1] - 8) // 2
    near = (first_slots < 10).float().mean()  # uniform slots would give 10 / 124 = 8%
    assert near > 4 * 10 / 124  # measured: 49%


def test_label_format_can_only_be_solved_from_context():
    x, y = data.label_format(500, 6, 32, seed=0)
    shot = 3 + 3
    assert x.shape == (500, 6 * shot)
    arrows = x[:, 3::shot]
    labels = x[:, 4::shot]
    assert (arrows == 1).all() and (x[:, 5::shot] == 2).all()
    assert (labels >= 16).all()
    for row_x, row_y in zip(x, y, strict=True):
        seen = set()
        for s in range(6):
            cls = (row_x[s * shot].item() - 4) // ((16 - 4) // 2)
            scored = row_y[s * shot + 3]
            if cls in seen:
                assert scored == row_x[s * shot + 4]
            else:
                assert scored == IGNORE
            seen.add(cls)
    # the label words change from sequence to sequence
    assert len(set(labels[:, 0].tolist())) > 10


@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0, None])
def test_needle_hides_its_pairs_and_scores_the_query(depth):
    V, L, k = 64, 41, 3
    x, y = data.needle(50, L, V, depth=depth, num_needles=k, seed=3)
    assert x.shape == y.shape == (50, L)
    assert (y[:, :-1] == IGNORE).all() and (y[:, -1] >= 3 * V // 4).all()
    for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
        query, value = row_x[-1], row_y[-1]
        keys = [t for t in row_x[:-1] if V // 2 <= t < 3 * V // 4]
        assert len(keys) == len(set(keys)) == k and query in keys
        s = row_x.index(query)
        assert s % 2 == 0 and row_x[s + 1] == value
        if depth is not None:  # the fraction of the way from the start to the query
            assert s // 2 == round(depth * ((L - 1) // 2 - 1))
        hay = [t for t in row_x[:-1] if t < V // 2]
        assert len(hay) == L - 1 - 2 * k and min(hay) >= 1
    if depth is None:  # drawn per example: it varies
        assert len({row.index(row[-1]) for row in x.tolist()}) > 5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: data.mqar(1, 10, 4, 64), "seq_len must be at least 4 \\* num_kv_pairs = 16"),
        (lambda: data.mqar(1, 64, 40, 64), "at least num_kv_pairs = 40 distinct keys"),
        (lambda: data.mqar(1, 64, 4, 64, power_a=0), "power_a must be"),
        (lambda: data.selective_copying(1, 8, 4, 10), "seq_len must be at least 2 \\* num_tokens"),
        (lambda: data.induction_heads(0, 8, 10), "num_examples must be an int >= 1"),
        (lambda: data.label_format(1, 4, 8, num_classes=4), "too small for num_classes = 4"),
        (lambda: data.corpus(seed=-1), "seed must be an int >= 0"),
        (lambda: data.mqar(1, 64, 4.0, 64), "num_kv_pairs must be an int"),
        (lambda: data.needle(1, 64, 64, depth=1.5), "depth must be None or a number in"),
        (
            lambda: data.needle(1, 6, 64, num_needles=3),
            "seq_len must be at least 2 \\* num_needles",
        ),
        (lambda: data.needle(1, 64, 64, num_needles=17), "num_needles must be at most"),
        (lambda: data.needle(1, 64, 12), "vocab_size must be at least 16"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tasks_are_deterministic():
    a = data.mqar(8, 32, 2, 16, seed=7)
    b = data.mqar(8, 32, 2, 16, seed=7)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
