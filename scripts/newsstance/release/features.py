"""Hugging Face features of every release config, derived from the annotation scheme.

One function (`features_for`) is the single definition: the parquet schema, the README
YAML `dataset_info`, the card's field table and the integrity checks all read it, so a
label added to `annotations/scheme.yaml` reaches every one of them at once.
Lists of dicts are `List({...})` (YAML `list:`), never `Sequence({...})`, which would turn
them into a dict of lists.
"""

from __future__ import annotations

from datasets import ClassLabel, Features, List, Value

from newsstance.errors import UserError
from newsstance.scheme import Scheme

DEFAULT = "default"
ARTICLES = "articles"
SILVER = "silver"
CONFIGS = (DEFAULT, ARTICLES, SILVER)
SPLITS = ("train", "validation", "test")

# Column -> one-line description, used by the card's field table.
DESCRIPTIONS: dict[str, str] = {
    "id": "Stable article id (16 hex characters), the same in every config and version.",
    "title": "Headline.",
    "text": "Article body: paragraphs joined by a blank line, NFC, `\\n` line ends.",
    "source": "Outlet name as the page states it; `null` when unknown.",
    "url": "Address of the article page; `null` when unknown.",
    "published_at": "Publication time, ISO 8601 UTC (`...Z`); `null` when unknown.",
    "published_at_precision": "How precise `published_at` is: minute, hour, day, week, month or year.",
    "language": "BCP-47 language code.",
    "authors": "Author names as printed.",
    "role": "`main` article of a page, `related` article listed on it, or `standalone`.",
    "related_to": "For a related article, the id of the page's main article; `null` otherwise.",
    "truncated": "The body is visibly cut or spliced mid-sentence in the source.",
    "annotated": "The article has a gold annotation (it is in the `default` config).",
    "text_sha256": "SHA-256 of `text` (UTF-8), to match annotations made on this exact text.",
    "entities": "Entity mentions: character offsets `start` (inclusive) and `end` (exclusive) into `text`, "
    "`label`, the covered `text`, and the article's `stance` towards the mention (-1: none).",
    "tokens": "Tokens (regex `\\w+|[^\\w\\s]`, split further at entity boundaries).",
    "token_starts": "Character offset where each token starts in `text`.",
    "token_ends": "Character offset where each token ends in `text` (exclusive).",
    "ner_tags": "BIO tag per token, derived from `entities` (conll2003 style).",
    "stances": "The article's stance towards each target (ClassLabel per target; -1: no label).",
    "model": "Model that produced the silver annotations (machine output, not human-checked).",
}


def entity_feature(scheme: Scheme) -> dict:
    return {
        "start": Value("int32"),
        "end": Value("int32"),
        "label": ClassLabel(names=scheme.entity_names),
        "text": Value("string"),
        "stance": ClassLabel(names=scheme.stance_names),
    }


def stances_feature(scheme: Scheme) -> dict:
    return {target: ClassLabel(names=scheme.document_stance_names) for target in scheme.target_ids}


def _metadata_columns() -> dict:
    return {
        "id": Value("string"),
        "title": Value("string"),
        "text": Value("string"),
        "source": Value("string"),
        "url": Value("string"),
        "published_at": Value("string"),
        "language": Value("string"),
    }


def _annotation_columns(scheme: Scheme) -> dict:
    return {
        "entities": List(entity_feature(scheme)),
        "tokens": List(Value("string")),
        "token_starts": List(Value("int32")),
        "token_ends": List(Value("int32")),
        "ner_tags": List(ClassLabel(names=scheme.bio_tags)),
        "stances": stances_feature(scheme),
    }


def features_for(scheme: Scheme, config: str = DEFAULT) -> Features:
    """The `datasets.Features` of one release config (`default`, `articles` or `silver`)."""
    if config == DEFAULT:
        return Features({**_metadata_columns(), **_annotation_columns(scheme)})
    if config == SILVER:
        return Features({**_metadata_columns(), **_annotation_columns(scheme), "model": Value("string")})
    if config == ARTICLES:
        return Features(
            {
                **_metadata_columns(),
                "published_at_precision": Value("string"),
                "authors": List(Value("string")),
                "role": Value("string"),
                "related_to": Value("string"),
                "truncated": Value("bool"),
                "annotated": Value("bool"),
                "text_sha256": Value("string"),
            }
        )
    raise UserError(f"unknown release config {config!r} (known: {', '.join(CONFIGS)})")


def describe_feature(feature: object) -> str:
    """Short human type of a feature for the card, e.g. `list of ClassLabel (15 names)`."""
    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, ClassLabel):
        return (
            f"ClassLabel ({', '.join(feature.names)})"
            if feature.num_classes <= 8
            else f"ClassLabel ({feature.num_classes} names)"
        )
    if isinstance(feature, List):
        inner = feature.feature
        if isinstance(inner, dict):
            return "list of {" + ", ".join(f"{k}: {describe_feature(v)}" for k, v in inner.items()) + "}"
        return f"list of {describe_feature(inner)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {describe_feature(v)}" for k, v in feature.items()) + "}"
    return type(feature).__name__
