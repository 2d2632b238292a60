"""Read and check a predictions file (JSON Lines, `schema/predictions.schema.json`), streaming.

Every problem is one `UserError` line naming the file and line, so a user can fix their
export quickly: malformed JSON, schema violations (with readable messages for unknown
labels), unknown or duplicate ids, offsets outside the article text, missing articles.

`entities` and `stances` are each optional: a file predicts a task when its lines carry
the key (on every line or on none - a key on some lines only is an error, since a model
that predicts a task predicts it for every article). Lines are read one at a time and
handed to the scorer, so memory does not grow with the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from newsstance.errors import UserError
from newsstance.evaluate.dataset import Span
from newsstance.scheme import Scheme, record_validator

TASKS = ("ner", "stance", "mention-stance")
TASK_TITLES = {"ner": "entities", "stance": "document stance", "mention-stance": "mention stance"}


@dataclass(slots=True)
class Prediction:
    """One article's predictions; None = that task is not predicted in this file."""

    id: str
    entities: list[Span] | None
    stances: dict[str, str] | None


@dataclass
class PredictionsSummary:
    """What a whole predictions file turned out to predict (known once every line was read)."""

    path: Path
    sha256: str = ""
    lines: int = 0
    with_entities: int = 0
    with_stances: int = 0
    targets: set[str] = field(default_factory=set)
    mention_stances: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> set[str]:
        """Tasks this file predicts: ner (an `entities` key), stance (a target given), mention-stance."""
        out = set()
        if self.with_entities:
            out.add("ner")
        if self.targets:
            out.add("stance")
        if self.mention_stances:
            out.add("mention-stance")
        return out

    @property
    def has_mention_stance(self) -> bool:
        """Whether any predicted entity carries a stance (else the mention-stance task was not attempted)."""
        return self.mention_stances > 0


def _label_problem(record: dict[str, Any], scheme: Scheme) -> str | None:
    """A readable message for the commonest schema failure: a label the scheme does not know."""
    entities = record.get("entities")
    if isinstance(entities, list):
        for number, entity in enumerate(entities):
            if not isinstance(entity, dict):
                continue
            label = entity.get("label")
            if isinstance(label, str) and label not in scheme.entity_names:
                return f"entity {number}: unknown label {label!r} (known: {', '.join(scheme.entity_names)})"
            stance = entity.get("stance")
            if isinstance(stance, str) and stance not in scheme.stance_names:
                return f"entity {number}: unknown stance {stance!r} (known: {', '.join(scheme.stance_names)})"
    stances = record.get("stances")
    if isinstance(stances, dict):
        for target, value in stances.items():
            if target not in scheme.target_ids:
                return f"unknown stance target {target!r} (known: {', '.join(scheme.target_ids)})"
            if isinstance(value, str) and value not in scheme.document_stance_names:
                return (
                    f"unknown stance {value!r} for target {target!r} (known: {', '.join(scheme.document_stance_names)})"
                )
    return None


def parse_record(record: Any, scheme: Scheme, text_lengths: Mapping[str, int]) -> Prediction:
    """Check one decoded line against the schema and the gold split; raises UserError without location."""
    if not isinstance(record, dict):
        raise UserError(f"expected a JSON object, got {type(record).__name__}")
    problem = _label_problem(record, scheme)
    if problem:
        raise UserError(problem)
    errors = record_validator("predictions").errors(record)
    if errors:
        if "id" in record and "entities" not in record and "stances" not in record:
            raise UserError("has neither `entities` nor `stances`: a line must predict at least one task")
        raise UserError(f"does not match schema/predictions.schema.json: {errors[0]}")
    article_id = record["id"]
    length = text_lengths.get(article_id)
    if length is None:
        raise UserError(f"unknown id {article_id}: not an article of the evaluated split")
    entities = None
    if "entities" in record:
        entities = []
        for number, entity in enumerate(record["entities"]):
            start, end = entity["start"], entity["end"]
            if start >= end:
                raise UserError(f"entity {number}: start {start} must be less than end {end}")
            if end > length:
                raise UserError(
                    f"entity {number}: offsets [{start}, {end}) out of range: the text has {length} characters"
                )
            entities.append(Span(start, end, entity["label"], entity.get("stance")))
    stances = (
        {key: value for key, value in record["stances"].items() if value is not None} if "stances" in record else None
    )
    return Prediction(article_id, entities, stances)


class TextLengths(Mapping[str, int]):
    """id -> text length over a split's columns (ids -> row index, lengths array), without a dict of ints."""

    def __init__(self, ids: Sequence[str], lengths: np.ndarray):
        self.row = {article_id: number for number, article_id in enumerate(ids)}
        self.lengths = lengths

    def __getitem__(self, key: str) -> int:
        return int(self.lengths[self.row[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self.row)

    def __len__(self) -> int:
        return len(self.row)


def stream_predictions(
    path: Path,
    scheme: Scheme,
    text_lengths: Mapping[str, int],
    summary: PredictionsSummary,
    *,
    allow_missing: bool = False,
    split: str = "test",
) -> Iterator[Prediction]:
    """Yield each checked line, then (with `allow_missing`) empty predictions for articles without a line.

    `summary` is filled as lines go by; after the generator is exhausted it says which tasks the
    file predicts and which articles were missing. Errors are raised where they are found.
    """
    digest = hashlib.sha256()
    order = list(text_lengths)
    row = (
        text_lengths.row
        if isinstance(text_lengths, TextLengths)
        else {article_id: number for number, article_id in enumerate(order)}
    )
    first_line = np.zeros(len(order), dtype=np.int64)  # 0 = not seen yet
    without: dict[str, int] = {}  # key -> first line that lacks it
    try:
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"predictions file not found: {path}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            digest.update(line)
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc})") from None
            try:
                prediction = parse_record(record, scheme, text_lengths)
            except UserError as exc:
                raise UserError(f"{path}:{number}: {exc}") from None
            index = row[prediction.id]
            if first_line[index]:
                raise UserError(
                    f"{path}:{number}: duplicate id {prediction.id} (first on line {int(first_line[index])})"
                )
            first_line[index] = number
            summary.lines += 1
            if prediction.entities is None:
                without.setdefault("entities", number)
            else:
                summary.with_entities += 1
                summary.mention_stances += sum(span.stance is not None for span in prediction.entities)
            if prediction.stances is None:
                without.setdefault("stances", number)
            else:
                summary.with_stances += 1
                summary.targets.update(prediction.stances)
            yield prediction
    summary.sha256 = digest.hexdigest()
    for key, count in (("entities", summary.with_entities), ("stances", summary.with_stances)):
        if 0 < count < summary.lines:
            raise UserError(
                f"{path}: `{key}` is on {count} of {summary.lines} lines (not on line {without[key]}): "
                f"give it on every line (empty when there is nothing to predict) or on none"
            )
    if not summary.lines:
        raise UserError(f"{path}: no predictions (the file is empty)")
    summary.missing = [order[index] for index in np.flatnonzero(first_line == 0).tolist()]
    if summary.missing and not allow_missing:
        shown = ", ".join(summary.missing[:3]) + (", ..." if len(summary.missing) > 3 else "")
        raise UserError(
            f"{path}: {len(summary.missing)} of {len(order)} articles of split {split!r} have no prediction "
            f"({shown}); pass --allow-missing to score them as empty predictions"
        )
    for article_id in summary.missing:
        yield Prediction(article_id, [] if summary.with_entities else None, {} if summary.with_stances else None)


@dataclass
class PredictionsFile:
    """A whole predictions file in memory (small files, tests; `evaluate` streams instead)."""

    path: Path
    sha256: str
    by_id: dict[str, Prediction]
    missing: list[str]
    summary: PredictionsSummary

    @property
    def has_mention_stance(self) -> bool:
        return self.summary.has_mention_stance


def read_predictions(
    path: Path, scheme: Scheme, text_lengths: Mapping[str, int], *, allow_missing: bool = False, split: str = "test"
) -> PredictionsFile:
    """Parse and check every line; missing articles are an error unless `allow_missing` (then empty)."""
    summary = PredictionsSummary(path)
    by_id = {
        p.id: p
        for p in stream_predictions(path, scheme, text_lengths, summary, allow_missing=allow_missing, split=split)
    }
    return PredictionsFile(path, summary.sha256, by_id, summary.missing, summary)
