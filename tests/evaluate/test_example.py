"""The example's alignment and windowing (examples/token_classification.py), on release-style tokens.

No tokenizer model is downloaded: the example's stand-in tokenizer has a fast tokenizer's interface
(`is_split_into_words=True`, `word_ids()`) and drops zero-width characters as BERT's do.
"""

from __future__ import annotations

import importlib.util
import itertools
import random
import sys
from pathlib import Path

import pytest

from newsstance.scheme import Scheme

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "token_classification.py"
ZERO_WIDTH = ["\u200b", "\u200d", "\u200c", "\ufeff", "\u00ad"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("token_classification_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def article(rng: random.Random, n_words: int, scheme: Scheme) -> tuple[list[str], list[int]]:
    """Words (some only zero-width characters, inside and outside entities) with valid BIO tag ids.

    As in release tokens, an entity starts and ends on a visible character.
    """
    words, tags = [], []
    while len(words) < n_words:
        if rng.random() < 0.2:
            label = rng.randrange(len(scheme.entity_names))
            length = rng.randint(1, 4)
            for position in range(length):
                zero_width = 0 < position < length - 1 and rng.random() < 0.4
                words.append(rng.choice(ZERO_WIDTH) if zero_width else "Name" * rng.randint(1, 5))
                tags.append(1 + 2 * label if position == 0 else 2 + 2 * label)
            words.append("said")
            tags.append(0)
        else:
            words.append(rng.choice(ZERO_WIDTH) if rng.random() < 0.05 else "w" * rng.randint(1, 14))
            tags.append(0)
    return words, tags


@pytest.mark.parametrize(("max_length", "stride"), [(12, 2), (32, 8), (512, 16)])
def test_windows_label_each_word_once_and_decode_back_losslessly(
    example, scheme: Scheme, max_length: int, stride: int
) -> None:
    rng = random.Random(max_length)
    tokenizer = example.ToySubwordTokenizer()
    id2label = dict(enumerate(scheme.bio_tags))
    for _ in range(40):
        words, tags = article(rng, rng.randint(1, 300), scheme)
        windows = example.encode_article(tokenizer, words, tags, max_length, stride)
        counts = example.piece_counts(tokenizer, words)
        assert all(len(w.word_ids) <= max_length for w in windows)
        assert windows[0].first == 0 and windows[-1].stop == len(words)
        for before, after in itertools.pairwise(windows):
            assert after.first > before.first and after.first <= before.stop  # progress, no gap
        labelled = [0] * len(words)
        for window in windows:
            for word, label in zip(window.word_ids, window.labels, strict=True):
                if label != example.IGNORE_INDEX:
                    assert label == tags[word]
                    labelled[word] += 1
        # Every word with a piece is labelled exactly once; zero-width-only words have no piece.
        assert labelled == [1 if count else 0 for count in counts]
        assert all(count == 0 for word, count in zip(words, counts, strict=True) if not example.visible(word))
        predictions = [[0 if w is None else tags[w] for w in window.word_ids] for window in windows]
        assert example.decode_article(windows, predictions, len(words), id2label) == tags


def test_long_article_is_split_and_spans_survive_zero_width_characters(example, scheme: Scheme) -> None:
    label2id = {name: index for index, name in enumerate(scheme.bio_tags)}
    id2label = dict(enumerate(scheme.bio_tags))
    person = scheme.entity_names[0]
    text = ("Filler words of a long fictional article. " * 60) + "Elara\u200bQuint spoke."
    # The release's tokens for this text (a zero-width space is a token of its own there).
    from newsstance.release.tokens import tokenize

    words, starts, ends = tokenize(text)
    start = text.index("Elara")
    span = (start, start + len("Elara\u200bQuint"), person)
    tags = example.spans_to_word_tags([span], starts, ends, label2id)
    windows = example.encode_article(example.ToySubwordTokenizer(), words, tags, 64, 8)
    assert len(windows) > 5
    predictions = [[0 if w is None else tags[w] for w in window.word_ids] for window in windows]
    decoded = example.decode_article(windows, predictions, len(words), id2label)
    assert example.word_tags_to_spans(decoded, starts, ends, id2label) == [
        {"start": span[0], "end": span[1], "label": person}
    ]
