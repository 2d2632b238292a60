"""Read and check a predictions file (JSON Lines, `schema/predictions.schema.json`).

Every problem is one `UserError` line naming the file and line, so a user can fix their
export quickly: malformed JSON, schema violations (with readable messages for unknown
labels), unknown or duplicate ids, offsets outside the article text, missing articles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from newsstance.errors import UserError
from newsstance.evaluate.dataset import Span
from newsstance.scheme import Scheme, record_validator


@dataclass(slots=True)
class Prediction:
    id: str
    entities: list[Span]
    stances: dict[str, str]


@dataclass
class PredictionsFile:
    path: Path
    sha256: str
    by_id: dict[str, Prediction]
    missing: list[str]

    @property
    def has_mention_stance(self) -> bool:
        """Whether any predicted entity carries a stance (else the mention-stance task was not attempted)."""
        return any(span.stance is not None for p in self.by_id.values() for span in p.entities)


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
        raise UserError(f"does not match schema/predictions.schema.json: {errors[0]}")
    article_id = record["id"]
    if article_id not in text_lengths:
        raise UserError(f"unknown id {article_id}: not an article of the evaluated split")
    length = text_lengths[article_id]
    entities = []
    for number, entity in enumerate(record["entities"]):
        start, end = entity["start"], entity["end"]
        if start >= end:
            raise UserError(f"entity {number}: start {start} must be less than end {end}")
        if end > length:
            raise UserError(f"entity {number}: offsets [{start}, {end}) out of range: the text has {length} characters")
        entities.append(Span(start, end, entity["label"], entity.get("stance")))
    return Prediction(article_id, entities, dict(record["stances"]))


def read_predictions(
    path: Path, scheme: Scheme, text_lengths: Mapping[str, int], *, allow_missing: bool = False, split: str = "test"
) -> PredictionsFile:
    """Parse and check every line; missing articles are an error unless `allow_missing` (then empty)."""
    digest = hashlib.sha256()
    by_id: dict[str, Prediction] = {}
    first_line: dict[str, int] = {}
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
            if prediction.id in by_id:
                raise UserError(
                    f"{path}:{number}: duplicate id {prediction.id} (first on line {first_line[prediction.id]})"
                )
            by_id[prediction.id] = prediction
            first_line[prediction.id] = number
    missing = [article_id for article_id in text_lengths if article_id not in by_id]
    if missing and not allow_missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise UserError(
            f"{path}: {len(missing)} of {len(text_lengths)} articles of split {split!r} have no prediction "
            f"({shown}); pass --allow-missing to score them as empty predictions"
        )
    for article_id in missing:
        by_id[article_id] = Prediction(article_id, [], {})
    return PredictionsFile(path, digest.hexdigest(), by_id, missing)
