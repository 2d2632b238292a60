"""Inputs of a release (articles, gold, silver) and the columns of every config.

Inputs are validated against their JSON Schemas first; then each annotated article
becomes one row: entities sorted by offset, tokens split at entity boundaries, BIO tags
from the same spans. Rows are built column by column (dict of lists) because pyarrow
turns columns into a table far faster than a list of row dicts.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from newsstance.errors import UserError
from newsstance.records import Progress, Record, read_jsonl, validator
from newsstance.release.features import ARTICLES, DEFAULT, SILVER
from newsstance.release.tokens import SpanOffTokens, bio_tag_ids, tokenize
from newsstance.scheme import Scheme, record_validator

METADATA_COLUMNS = ("id", "title", "text", "source", "url", "published_at", "language")


def expand_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Files named by paths or glob patterns, sorted, each once."""
    found: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        matches = sorted(Path(p) for p in glob.glob(text)) if glob.has_magic(text) else [Path(text)]
        found += [p for p in matches if p not in found]
    return found


def _first_error(path: Path, number: int, errors: list) -> UserError:
    extra = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return UserError(f"{path}:{number}: {errors[0]}{extra}")


def iter_articles(paths: Iterable[Path], validate: bool = True) -> Iterator[Record]:
    """Article records of the given JSONL files, one at a time, schema-validated (first pass) or not (later
    passes over the same, already checked files)."""
    check = validator("article.schema.json") if validate else None
    for path in paths:
        for number, record in enumerate(read_jsonl(path), start=1):
            if check is not None:
                errors = check.errors(record)
                if errors:
                    raise _first_error(path, number, errors)
            yield record


CLUSTER_FIELDS = ("id", "url", "source", "title", "text_sha256", "duplicate_of", "related_to")


def load_articles(
    paths: Iterable[Path], light: bool = False, tap: Callable[[Record], None] | None = None
) -> list[Record]:
    """Every article record of the given JSONL files, schema-validated, ids unique.

    `light=True` keeps only the fields the splitter needs (`CLUSTER_FIELDS`), so the index of a
    million-article corpus fits in memory while texts are streamed later; `tap` sees every full record."""
    articles: list[Record] = []
    seen: set[str] = set()
    paths = list(paths)
    if not paths:
        raise UserError("no article files found (run `newsstance normalize` or pass --articles)")
    for record in iter_articles(paths):
        if tap is not None:
            tap(record)
        if record["id"] in seen:
            raise UserError(f"article id {record['id']} appears twice in {', '.join(map(str, paths))}")
        seen.add(record["id"])
        articles.append({k: record.get(k) for k in CLUSTER_FIELDS} if light else record)
    if not articles:
        raise UserError(f"no articles in {', '.join(map(str, paths))} (run `newsstance normalize`)")
    return articles


def load_gold(path: Path, articles_by_id: Mapping[str, Record], scheme: Scheme) -> dict[str, Record]:
    """Gold records by article id: schema-valid, for a known article, made on its current text."""
    if not path.is_file():
        raise UserError(f"gold annotations not found: {path} (run `newsstance adjudicate`, or pass --gold FILE)")
    check = record_validator("gold")
    major = scheme.scheme_version.split(".")[0]
    gold: dict[str, Record] = {}
    for number, record in enumerate(read_jsonl(path), start=1):
        errors = check.errors(record)
        if errors:
            raise _first_error(path, number, errors)
        article = articles_by_id.get(record["article_id"])
        where = f"{path}:{number}"
        if article is None:
            raise UserError(f"{where}: gold for unknown article {record['article_id']}")
        if record["text_sha256"] != article["text_sha256"]:
            raise UserError(
                f"{where}: gold for article {record['article_id']} was made on a different text "
                "(text_sha256 differs); re-annotate or re-import it"
            )
        if record["scheme_version"].split(".")[0] != major:
            raise UserError(
                f"{where}: scheme_version {record['scheme_version']} does not match the scheme's "
                f"{scheme.scheme_version}"
            )
        if record["article_id"] in gold:
            raise UserError(f"{where}: second gold record for article {record['article_id']}")
        gold[record["article_id"]] = record
    if not gold:
        raise UserError(
            f"no gold annotations in {path} (label in `newsstance studio` and run `newsstance adjudicate`, "
            "or pass --gold FILE)"
        )
    return gold


class Columns:
    """Rows of one config split, gathered column by column and turned into arrow every `chunk` rows.

    Converting in chunks keeps only a few thousand rows as Python objects at a time (peak memory
    stays near the size of the arrow data), and column-wise conversion with explicit types is
    faster than `Table.from_pydict`.
    """

    def __init__(self, schema: pa.Schema, chunk: int = 4096, on_batch: Callable[[pa.RecordBatch], None] | None = None):
        self.schema = schema
        self.chunk = chunk
        self.on_batch = on_batch  # streaming: hand each batch on (to a shard writer) instead of keeping it
        self.pending: dict[str, list[Any]] = {name: [] for name in schema.names}
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0

    def append(self, row: Mapping[str, Any]) -> None:
        for name, values in self.pending.items():
            values.append(row[name])
        self.rows += 1
        if len(self.pending["id"]) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if self.pending["id"]:
            arrays = [pa.array(self.pending[field.name], type=field.type) for field in self.schema]
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
            if self.on_batch is not None:
                self.on_batch(batch)
            else:
                self.batches.append(batch)
            self.pending = {name: [] for name in self.schema.names}

    def table(self) -> pa.Table:
        self.flush()
        return pa.Table.from_batches(self.batches, schema=self.schema)

    def __len__(self) -> int:
        return self.rows


def _entity_rows(
    article: Record,
    entities: Iterable[Record],
    scheme: Scheme,
    entity_index: Mapping[str, int],
    stance_index: Mapping[str, int],
) -> list[dict[str, Any]]:
    """Entities sorted by offset with label ids; clear errors for spans that cannot become BIO tags."""
    text = article["text"]
    size = len(text)
    rows: list[dict[str, Any]] = []
    previous_end = 0
    for entity in sorted(entities, key=lambda e: (e["start"], e["end"])):
        start, end = entity["start"], entity["end"]
        covered = text[start:end]
        label = entity_index.get(entity["label"])
        if (
            not 0 <= start < end <= size
            or entity.get("text", covered) != covered
            or covered[0].isspace()
            or covered[-1].isspace()
            or label is None
            or start < previous_end
        ):
            raise _entity_error(article, entity, rows, scheme)
        stance = entity.get("stance")
        rows.append(
            {
                "start": start,
                "end": end,
                "label": label,
                "text": covered,
                "stance": stance_index[stance] if stance is not None else -1,
            }
        )
        previous_end = end
    return rows


def _entity_error(article: Record, entity: Record, previous: list[dict[str, Any]], scheme: Scheme) -> UserError:
    """The one-line message for the first thing wrong with an entity (kept off the fast path)."""
    text = article["text"]
    start, end = entity["start"], entity["end"]
    covered = text[start:end]
    span = f"article {article['id']}: entity [{start}, {end}) {entity['label']}"
    if not 0 <= start < end <= len(text):
        return UserError(f"{span} is outside the text (length {len(text)})")
    if entity.get("text", covered) != covered:
        return UserError(f"{span} says {entity['text']!r} but the text there is {covered!r}")
    if covered != covered.strip():
        return UserError(f"{span} {covered!r} starts or ends with whitespace; trim the span")
    if entity["label"] not in scheme.entity_names:
        return UserError(f"{span}: label not in the scheme ({', '.join(scheme.entity_names)})")
    prev = previous[-1]
    return UserError(
        f"{span} overlaps [{prev['start']}, {prev['end']}) {scheme.entity_names[prev['label']]}; "
        "BIO tags need non-overlapping spans"
    )


def _metadata(article: Record) -> dict[str, Any]:
    return {name: article.get(name) for name in METADATA_COLUMNS}


@dataclass(frozen=True)
class LabelIds:
    """Name -> ClassLabel id maps of a scheme, computed once per build rather than once per row."""

    entity: dict[str, int]
    stance: dict[str, int]
    document: dict[str, int]
    targets: tuple[str, ...]

    @classmethod
    def of(cls, scheme: Scheme) -> LabelIds:
        def index(names: list[str]) -> dict[str, int]:
            return {name: i for i, name in enumerate(names)}

        return cls(
            index(scheme.entity_names),
            index(scheme.stance_names),
            index(scheme.document_stance_names),
            tuple(scheme.target_ids),
        )


def annotated_row(
    article: Record,
    entities: Iterable[Record],
    stances: Mapping[str, str],
    scheme: Scheme,
    ids: LabelIds | None = None,
) -> dict[str, Any]:
    """One `default`/`silver` row: metadata, entities, tokens with offsets, BIO tag ids, stance per target."""
    ids = ids or LabelIds.of(scheme)
    doc_index = ids.document
    ents = _entity_rows(article, entities, scheme, ids.entity, ids.stance)
    text = article["text"]
    tokens, starts, ends = tokenize(text, [offset for e in ents for offset in (e["start"], e["end"])])
    try:
        tags = bio_tag_ids(starts, ends, ((e["start"], e["end"], e["label"]) for e in ents))
    except SpanOffTokens as exc:
        raise UserError(f"article {article['id']}: {exc}") from None
    return {
        **_metadata(article),
        "entities": ents,
        "tokens": tokens,
        "token_starts": starts,
        "token_ends": ends,
        "ner_tags": tags,
        "stances": {t: doc_index[stances[t]] if stances.get(t) is not None else -1 for t in ids.targets},
    }


def article_row(article: Record, annotated: bool) -> dict[str, Any]:
    """One `articles` row: the article without annotations."""
    return {
        **_metadata(article),
        "published_at_precision": article.get("published_at_precision"),
        "authors": list(article.get("authors") or []),
        "role": article.get("role"),
        "related_to": article.get("related_to"),
        "truncated": bool(article.get("truncated")),
        "annotated": annotated,
        "text_sha256": article["text_sha256"],
    }


@dataclass
class Silver:
    """Machine pre-annotations: entities (and stances, when a predictions file has them) per article id."""

    model: str
    entities: dict[str, list[Record]]
    stances: dict[str, dict[str, str]] = field(default_factory=dict)
    # Articles no model annotated (a language without a model): no silver row, rather than a row
    # that looks like "no entities". An article a predictions file leaves out has empty entities.
    not_annotated: set[str] = field(default_factory=set)

    def covers(self, article_id: str) -> bool:
        return article_id not in self.not_annotated


def _columns(
    configs: dict[str, dict[str, Columns]], config: str, split: str, schemas: Mapping[str, pa.Schema]
) -> Columns:
    if split not in configs[config]:
        configs[config][split] = Columns(schemas[config])
    return configs[config][split]


def config_columns(
    articles: list[Record],
    gold: Mapping[str, Record],
    split_of: Mapping[str, str],
    scheme: Scheme,
    schemas: Mapping[str, pa.Schema],
    silver: Silver | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, Columns]]:
    """config -> split -> columns (arrow schemas from the features), in a stable order (by article id)."""
    configs: dict[str, dict[str, Columns]] = {DEFAULT: {}, ARTICLES: {}}
    if silver is not None:
        configs[SILVER] = {}
    ids = LabelIds.of(scheme)
    for article in sorted(articles, key=lambda a: a["id"]):
        article_id = article["id"]
        split = split_of[article_id]
        record = gold.get(article_id)
        if record is not None:
            _columns(configs, DEFAULT, split, schemas).append(
                annotated_row(article, record["entities"], record["stances"], scheme, ids)
            )
        if article.get("duplicate_of") is None:
            _columns(configs, ARTICLES, split, schemas).append(article_row(article, record is not None))
            if silver is not None and silver.covers(article_id):
                row = annotated_row(
                    article, silver.entities.get(article_id, []), silver.stances.get(article_id, {}), scheme, ids
                )
                _columns(configs, SILVER, split, schemas).append({**row, "model": silver.model})
        if progress is not None:
            progress.update(1)
    return configs
