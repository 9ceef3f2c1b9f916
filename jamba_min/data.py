"""Data for training tiny Jambas (chapters 9-11): bytes, a corpus, and synthetic tasks.

Nothing is downloaded. Every function is deterministic given its ``seed``; :func:`corpus` gives the
same bytes on every machine and Python version (it draws only from ``random.Random.random``,
whose sequence Python keeps fixed).

Every task returns ``(input_ids, labels)``, two int64 tensors of shape ``(num_examples,
seq_len)``. Labels are already aligned with the positions that predict them: ``labels[i, t]`` is
the token the model should output after reading ``input_ids[i, : t + 1]``, and
:data:`IGNORE_INDEX` (-100) where nothing is scored, so that the loss is
``F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)`` with no shift.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from .config import is_int, is_real

IGNORE_INDEX = -100
"""Label of a position that is not scored (``F.cross_entropy``'s default ``ignore_index``)."""


def _check_int(name: str, value: object, low: int) -> int:
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _generator(seed: object) -> torch.Generator:
    return torch.Generator().manual_seed(_check_int("seed", seed, 0))


class ByteTokenizer:
    """Text ↔ token ids, one id per UTF-8 byte: a vocabulary of 256 that needs no training.

    A character outside ASCII takes 2-4 ids; :meth:`decode` replaces byte sequences that are
    not valid UTF-8 (a model may well produce them) with U+FFFD instead of failing.
    """

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        """``text`` → its UTF-8 bytes as ints in ``[0, 256)``."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        return list(text.encode("utf-8"))

    def decode(self, ids: Tensor | list[int]) -> str:
        """Ids ``(L,)`` (a list or a 1-D tensor) → text."""
        if isinstance(ids, Tensor):
            if ids.dim() != 1 or ids.is_floating_point():
                raise ValueError(f"ids must be a 1-D integer tensor, got {tuple(ids.shape)}")
            ids = ids.tolist()
        bad = [i for i in ids if not is_int(i) or not 0 <= i < 256]
        if bad:
            raise ValueError(f"ids must be ints in [0, 256), got {bad[:5]}")
        return bytes(ids).decode("utf-8", errors="replace")


# --- a corpus that exists wherever Python runs --------------------------------------------------

_NAMES = ["Mia", "Leo", "Ada", "Tom", "Zoe", "Ben", "Ivy", "Sam", "Lily", "Max", "Nora", "Finn"]
_ANIMALS = ["cat", "dog", "fox", "owl", "rabbit", "bear", "duck", "mouse", "frog", "goat"]
_PLACES = ["a small house", "a big forest", "a quiet town", "a farm", "a boat", "a tall tree"]
_NEAR = ["the river", "the hill", "the sea", "the old bridge", "the market", "the lake"]
_ADJS = ["red", "shiny", "tiny", "heavy", "soft", "strange", "blue", "golden", "broken"]
_THINGS = ["ball", "key", "hat", "box", "stone", "kite", "book", "cup", "shell", "map"]
_FEELINGS = ["happy", "sad", "tired", "curious", "scared", "proud", "hungry", "brave"]
_HELPS = [
    "helped {b} carry the {thing}",
    "showed the {thing} to {b}",
    "gave the {thing} to {b}",
    "hid the {thing} under a leaf",
    "shared the {thing} with {b}",
]
_ENDS = [
    "From that day on, {a} and {b} were good friends.",
    "{A} smiled and went home.",
    "Then {a} and {b} had a nap in the sun.",
    "{A} kept the {thing} forever.",
]


class _Draw:
    """Choices from ``random.Random.random`` alone, so that they are the same on every Python."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def pick(self, items: list[str]) -> str:
        return items[int(self.rng.random() * len(items))]

    def two(self, items: list[str]) -> tuple[str, str]:
        first = self.pick(items)
        return first, self.pick([x for x in items if x != first])


def _story(draw: _Draw) -> str:
    a, b = draw.two(_NAMES)
    animal, friend = draw.two(_ANIMALS)
    adj, thing = draw.pick(_ADJS), draw.pick(_THINGS)
    feeling, later = draw.two(_FEELINGS)
    values = {"a": a, "A": a, "b": b, "thing": f"{adj} {thing}"}
    lines = [
        f"Once upon a time, there was a {animal} named {a}.",
        f"{a} lived in {draw.pick(_PLACES)} near {draw.pick(_NEAR)}.",
        f"One day, {a} found a {adj} {thing}.",
        f"{a} felt {feeling}.",
        f"{a} went to see {b} the {friend}.",
        f'"Look at my {thing}!" said {a}.',
        f'"It is very {adj}," said {b}.',
        f"{a} {draw.pick(_HELPS).format(**values)}.",
        f"Now {a} was {later}.",
        draw.pick(_ENDS).format(**values),
    ]
    return " ".join(lines)


def corpus(num_stories: int = 2000, seed: int = 0) -> str:
    """A text of ``num_stories`` short generated stories, one per line (about 430 bytes each).

    Names, animals and objects are drawn afresh for every story and then repeated within it, so
    that predicting the text well rewards looking back at the context, as real text does.
    """
    draw = _Draw(_check_int("seed", seed, 0))
    count = _check_int("num_stories", num_stories, 1)
    return "\n".join(_story(draw) for _ in range(count)) + "\n"


def text_windows(
    text: str, num_examples: int, seq_len: int, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``num_examples`` random windows of ``text``'s bytes for next-byte prediction.

    Returns ``(input_ids, labels)``, each ``(num_examples, seq_len)``: ``labels`` is the window
    shifted by one byte, every position scored.
    """
    ids = torch.tensor(ByteTokenizer().encode(text), dtype=torch.long)
    num_examples = _check_int("num_examples", num_examples, 1)
    seq_len = _check_int("seq_len", seq_len, 1)
    if len(ids) < seq_len + 1:
        raise ValueError(
            f"text must hold at least seq_len + 1 = {seq_len + 1} bytes, got {len(ids)}"
        )
    starts = torch.randint(0, len(ids) - seq_len, (num_examples,), generator=_generator(seed))
    windows = ids[starts[:, None] + torch.arange(seq_len + 1)]
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


# --- synthetic tasks ----------------------------------------------------------------------------


def _check_task(num_examples: object, seq_len: object, vocab_size: object) -> tuple[int, int, int]:
    return (
        _check_int("num_examples", num_examples, 1),
        _check_int("seq_len", seq_len, 2),
        _check_int("vocab_size", vocab_size, 4),
    )


def selective_copying(
    num_examples: int, seq_len: int, num_tokens: int, vocab_size: int, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Copy the ``num_tokens`` data tokens scattered among blanks, in order (Mamba's Figure 2).

    Layout: ``seq_len - num_tokens - 1`` positions of blanks (id 0) with the data tokens (ids in
    ``[2, vocab_size)``) at random positions, then the separator (id 1), then the data tokens
    again. Scored: the separator and every copied token but the last predict the next data token.
    Where the data sits varies, so a time-invariant model cannot solve it (chapter 1).
    """
    n, L, V = _check_task(num_examples, seq_len, vocab_size)
    k = _check_int("num_tokens", num_tokens, 1)
    context = L - k - 1
    if context < k:
        raise ValueError(
            f"seq_len must be at least 2 * num_tokens + 1 = {2 * k + 1}, got {L} (num_tokens={k})"
        )
    g = _generator(seed)
    data = torch.randint(2, V, (n, k), generator=g)
    where = torch.rand(n, context, generator=g).argsort(dim=1)[:, :k].sort(dim=1).values
    x = torch.zeros(n, L, dtype=torch.long)
    x.scatter_(1, where, data)
    x[:, context] = 1
    x[:, context + 1 :] = data
    labels = torch.full_like(x, IGNORE_INDEX)
    labels[:, context : L - 1] = data
    return x, labels


def induction_heads(
    num_examples: int, seq_len: int, vocab_size: int, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Recall what followed a trigger token earlier in the sequence (Olsson et al. 2022).

    Random tokens (ids in ``[2, vocab_size)``) with the trigger (id 1) once at a random position
    in the first half, followed by a random target token; the sequence ends with the trigger
    again, and only that last position is scored: its label is the target.
    """
    n, L, V = _check_task(num_examples, seq_len, vocab_size)
    if L < 4:
        raise ValueError(f"seq_len must be at least 4, got {L}")
    g = _generator(seed)
    x = torch.randint(2, V, (n, L), generator=g)
    pos = torch.randint(0, (L - 2) // 2, (n,), generator=g)
    rows = torch.arange(n)
    x[rows, pos] = 1
    x[:, -1] = 1
    labels = torch.full_like(x, IGNORE_INDEX)
    labels[:, -1] = x[rows, pos + 1]
    return x, labels


def mqar(
    num_examples: int,
    seq_len: int,
    num_kv_pairs: int,
    vocab_size: int,
    seed: int = 0,
    power_a: float = 0.01,
) -> tuple[Tensor, Tensor]:
    """Multi-query associative recall (Arora et al. 2023, Zoology).

    The sequence opens with ``num_kv_pairs`` key-value pairs ``k₁ v₁ k₂ v₂ …``, keys drawn
    without repeats from ``[1, vocab_size / 2)`` and values from ``[vocab_size / 2,
    vocab_size)``. The rest holds every key once more, in random order and at random even
    offsets, each followed by its value; other positions are 0. Scored: each queried key, whose
    label is its value. Query slots are drawn with probability ∝ ``j^(power_a - 1)`` for the
    ``j``-th slot after the pairs, as in Zoology, so that most queries come soon after the pairs
    and a few far away.
    """
    n, L, V = _check_task(num_examples, seq_len, vocab_size)
    p = _check_int("num_kv_pairs", num_kv_pairs, 1)
    if not is_real(power_a) or not 0 < power_a <= 1:
        raise ValueError(f"power_a must be a real number in (0, 1], got {power_a!r}")
    half = V // 2
    if half - 1 < p:
        raise ValueError(
            f"vocab_size must give at least num_kv_pairs = {p} distinct keys in [1, vocab_size "
            f"/ 2), got vocab_size={V}"
        )
    slots = (L - 2 * p) // 2
    if slots < p:
        raise ValueError(
            f"seq_len must be at least 4 * num_kv_pairs = {4 * p} (the pairs, then one query "
            f"slot of two tokens per key), got {L}"
        )
    g = _generator(seed)
    keys = torch.rand(n, half - 1, generator=g).argsort(dim=1)[:, :p] + 1
    values = torch.randint(half, V, (n, p), generator=g)
    weight = torch.arange(1, slots + 1, dtype=torch.float64) ** (power_a - 1)
    slot = torch.multinomial(weight.expand(n, slots), p, replacement=False, generator=g)
    query = 2 * p + 2 * slot  # position of each key's query, in the order of the pairs
    x = torch.zeros(n, L, dtype=torch.long)
    x[:, 0 : 2 * p : 2], x[:, 1 : 2 * p : 2] = keys, values
    x.scatter_(1, query, keys)
    x.scatter_(1, query + 1, values)
    labels = torch.full_like(x, IGNORE_INDEX)
    labels.scatter_(1, query, values)
    return x, labels


def needle(
    num_examples: int,
    seq_len: int,
    vocab_size: int,
    depth: float | None = None,
    num_needles: int = 1,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Needle in a haystack: find the value of a key hidden somewhere in a long sequence.

    The haystack is random filler tokens from ``[1, vocab_size / 2)``. Hidden in it are
    ``num_needles`` key-value pairs, each two adjacent tokens at an even offset: keys without
    repeats from ``[vocab_size / 2, 3 vocab_size / 4)``, values from ``[3 vocab_size / 4,
    vocab_size)``. The sequence ends with the first needle's key, and only that last position is
    scored: its label is the first needle's value; the other needles are distractors. ``depth``
    in ``[0, 1]`` puts the first needle at that fraction of the way from the start (0) to just
    before the query (1); ``None`` draws it uniformly for each example.
    """
    n, L, V = _check_task(num_examples, seq_len, vocab_size)
    k = _check_int("num_needles", num_needles, 1)
    if V < 16:
        raise ValueError(f"vocab_size must be at least 16 (filler, keys, values), got {V}")
    if k > V // 4:
        raise ValueError(f"num_needles must be at most vocab_size / 4 = {V // 4} distinct keys, "
                         f"got {k}")  # fmt: skip
    slots = (L - 1) // 2  # places for a pair before the query
    if slots < k:
        raise ValueError(f"seq_len must be at least 2 * num_needles + 1 = {2 * k + 1}, got {L}")
    if depth is not None and (not is_real(depth) or not 0 <= depth <= 1):
        raise ValueError(f"depth must be None or a number in [0, 1], got {depth!r}")
    g = _generator(seed)
    keys = torch.rand(n, V // 4, generator=g).argsort(dim=1)[:, :k] + V // 2
    values = torch.randint(3 * V // 4, V, (n, k), generator=g)
    x = torch.randint(1, V // 2, (n, L), generator=g)
    if depth is None:
        first = torch.randint(0, slots, (n,), generator=g)
    else:
        first = torch.full((n,), round(depth * (slots - 1)))
    order = torch.rand(n, slots, generator=g)
    order[torch.arange(n), first] = 2.0  # the first needle's slot goes last: never drawn again
    slot = torch.cat([first[:, None], order.argsort(dim=1)[:, : k - 1]], dim=1)
    x.scatter_(1, 2 * slot, keys)
    x.scatter_(1, 2 * slot + 1, values)
    x[:, -1] = keys[:, 0]
    labels = torch.full_like(x, IGNORE_INDEX)
    labels[:, -1] = values[:, 0]
    return x, labels


def label_format(
    num_examples: int,
    num_shots: int,
    vocab_size: int,
    seed: int = 0,
    input_len: int = 3,
    num_classes: int = 2,
) -> tuple[Tensor, Tensor]:
    """Few-shot classification whose label words are new in every sequence (the paper's Table 6).

    Each shot is ``input_len`` input tokens, the arrow (id 1), a label token and the separator
    (id 2). An input's class is fixed across sequences (its tokens come from its class's band
    of ``[4, vocab_size / 2)``), but each sequence names its ``num_classes`` classes with fresh
    label tokens from ``[vocab_size / 2, vocab_size)``, so that the right label can only be
    copied from an earlier shot of the same class. Scored: the arrow of every shot whose class
    has appeared before, with the label as its target. ``seq_len = num_shots * (input_len + 3)``.
    """
    n = _check_int("num_examples", num_examples, 1)
    shots = _check_int("num_shots", num_shots, 2)
    V = _check_int("vocab_size", vocab_size, 8)
    m = _check_int("input_len", input_len, 1)
    c = _check_int("num_classes", num_classes, 2)
    band = (V // 2 - 4) // c
    if band < 1 or c > V - V // 2:
        raise ValueError(
            f"vocab_size = {V} is too small for num_classes = {c}: it needs at least one input "
            "token per class below vocab_size / 2 and num_classes label tokens above"
        )
    g = _generator(seed)
    names = torch.rand(n, V - V // 2, generator=g).argsort(dim=1)[:, :c] + V // 2
    cls = torch.randint(0, c, (n, shots), generator=g)
    inputs = 4 + cls[..., None] * band + torch.randint(0, band, (n, shots, m), generator=g)
    label = names.gather(1, cls)
    x = torch.cat(
        [
            inputs,
            torch.ones(n, shots, 1, dtype=torch.long),
            label[..., None],
            torch.full((n, shots, 1), 2, dtype=torch.long),
        ],
        dim=2,
    )
    seen = torch.zeros(n, shots, dtype=torch.bool)
    for s in range(1, shots):
        seen[:, s] = (cls[:, :s] == cls[:, s : s + 1]).any(dim=1)
    labels = torch.full_like(x, IGNORE_INDEX)
    labels[..., m] = torch.where(seen, label, IGNORE_INDEX)
    return x.flatten(1), labels.flatten(1)
