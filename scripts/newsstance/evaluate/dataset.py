"""Read a built release (local folder or Hub repo) into gold articles for scoring.

Everything goes through `datasets.load_dataset`, as a user would. A local folder is
loaded with a private, throw-away cache: `load_dataset` can serve stale rows for a
folder rebuilt in place (see notes/hf-datasets.md), and a scorer must never do that.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from newsstance.errors import UserError
from newsstance.evaluate.bio import token_offsets
from newsstance.paths import project_root
from newsstance.scheme import Scheme, load_scheme

SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


@dataclass(frozen=True, slots=True)
class Span:
    """An entity mention in code-point offsets: [start, end), label name, mention stance or None."""

    start: int
    end: int
    label: str
    stance: str | None = None


@dataclass(slots=True)
class GoldArticle:
    """A gold article; tag and offset arrays may be numpy views into the split's flat columns."""

    id: str
    text: str
    entities: list[Span]
    stances: dict[str, str | None]
    ner_tags: Sequence[int]
    token_starts: Sequence[int]
    token_ends: Sequence[int]


@dataclass
class Release:
    """One split of a release, plus where it came from (for the results file)."""

    dataset_id: str
    config: str
    split: str
    version: str | None
    revision: str | None
    articles: list[GoldArticle]
    local_path: Path | None = None
    other_splits: dict[str, list[GoldArticle]] = field(default_factory=dict)


def newest_release_dir(dist: Path | None = None) -> Path:
    """The highest semver folder under `dist/` (the default dataset to score against)."""
    dist = dist or project_root() / "dist"
    versions = []
    if dist.is_dir():
        for child in dist.iterdir():
            match = SEMVER.match(child.name)
            if match and child.is_dir():
                versions.append((tuple(int(part) for part in match.groups()), child))
    if not versions:
        raise UserError(f"no release found under {dist}: run `newsstance build` or pass --dataset DIR|REPO_ID")
    return max(versions)[1]


def _class_names(feature: Any, where: str) -> list[str]:
    names = getattr(feature, "names", None)
    if names is None:
        raise UserError(f"dataset column {where} is not a ClassLabel (got {feature!r})")
    return list(names)


def _inner(feature: Any) -> Any:
    """Element feature of a `List`/`Sequence`/plain list column."""
    if isinstance(feature, list):
        return feature[0]
    return getattr(feature, "feature", feature)


@dataclass(frozen=True)
class LabelMaps:
    entity: list[str]
    stance: list[str]
    bio: list[str]
    document: dict[str, list[str]]


def label_maps(features: Any, scheme: Scheme) -> LabelMaps:
    """ClassLabel names of the release, checked against the installed scheme."""
    for column in ("id", "text", "entities", "tokens", "ner_tags", "stances"):
        if column not in features:
            raise UserError(f"dataset has no column {column!r}: is this a newsstance release (config 'default')?")
    entity_feature = _inner(features["entities"])
    maps = LabelMaps(
        entity=_class_names(entity_feature["label"], "entities.label"),
        stance=_class_names(entity_feature["stance"], "entities.stance"),
        bio=_class_names(_inner(features["ner_tags"]), "ner_tags"),
        document={
            target: _class_names(feature, f"stances.{target}") for target, feature in features["stances"].items()
        },
    )
    expected = {
        "entity labels": (maps.entity, scheme.entity_names),
        "mention stances": (maps.stance, scheme.stance_names),
        "BIO tags": (maps.bio, scheme.bio_tags),
    }
    for what, (found, wanted) in expected.items():
        if found != wanted:
            raise UserError(f"the release's {what} {found} differ from the scheme's {wanted}: use a matching toolkit")
    if sorted(maps.document) != sorted(scheme.target_ids):
        raise UserError(
            f"the release's stance targets {sorted(maps.document)} differ from the scheme's {sorted(scheme.target_ids)}"
        )
    for target, names in maps.document.items():
        if names != scheme.document_stance_names:
            raise UserError(
                f"the release's stances for {target} {names} differ from the scheme's {scheme.document_stance_names}"
            )
    return maps


def _name(names: list[str], value: int | None, where: str) -> str | None:
    if value is None or value == -1:
        return None
    if not 0 <= value < len(names):
        raise UserError(f"{where}: ClassLabel id {value} out of range 0..{len(names) - 1}")
    return names[value]


def _flat_list_column(table: Any, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (flat values, offsets): one numpy array, no Python object per token."""
    import pyarrow.compute as pc

    chunked = table.column(column)
    lengths = pc.fill_null(pc.list_value_length(chunked), 0).to_numpy()
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    values = pc.list_flatten(chunked).to_numpy() if len(chunked) else np.zeros(0, dtype=np.int64)
    return np.asarray(values, dtype=np.int64), offsets


def _entity_columns(table: Any, maps: LabelMaps) -> tuple[np.ndarray, list[list[Span]]]:
    """Entities of every row as Spans, read from flat Arrow struct fields (no dict per entity)."""
    import pyarrow.compute as pc

    chunked = table.column("entities")
    lengths = pc.fill_null(pc.list_value_length(chunked), 0).to_numpy()
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    flat = pc.list_flatten(chunked)
    fields = {
        name: pc.fill_null(pc.struct_field(flat, name), -1).to_numpy() if len(flat) else np.zeros(0, np.int64)
        for name in ("start", "end", "label", "stance")
    }
    labels, stances = fields["label"], fields["stance"]
    ids = table.column("id")
    for values, names, what in ((labels, maps.entity, "label"), (stances, maps.stance, "stance")):
        low = 0 if what == "label" else -1
        bad = np.flatnonzero((values < low) | (values >= len(names)))
        if bad.size:
            row = int(np.searchsorted(offsets, bad[0], side="right")) - 1
            raise UserError(
                f"article {ids[row].as_py()} entity {int(bad[0] - offsets[row])}: {what} ClassLabel id "
                f"{int(values[bad[0]])} out of range 0..{len(names) - 1}"
            )
    label_names = [maps.entity[i] for i in labels.tolist()]
    stance_names = [None if i < 0 else maps.stance[i] for i in stances.tolist()]
    spans = [
        Span(*values)
        for values in zip(fields["start"].tolist(), fields["end"].tolist(), label_names, stance_names, strict=True)
    ]
    return offsets, [spans[offsets[row] : offsets[row + 1]] for row in range(len(offsets) - 1)]


def gold_articles(table: Any, maps: LabelMaps) -> list[GoldArticle]:
    """Rows of a split's Arrow table -> GoldArticles, column by column (fast and lean for 10k+ articles).

    ClassLabel ids are range-checked here: `datasets` does not check them when reading parquet.
    """
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    _, entities = _entity_columns(table, maps)
    stances = table.column("stances").to_pylist()
    tags, tag_offsets = _flat_list_column(table, "ner_tags")
    if tags.size and (tags.min() < 0 or tags.max() >= len(maps.bio)):
        bad = int(np.flatnonzero((tags < 0) | (tags >= len(maps.bio)))[0])
        article = ids[int(np.searchsorted(tag_offsets, bad, side="right")) - 1]
        raise UserError(
            f"article {article} ner_tags: ClassLabel id {int(tags[bad])} out of range 0..{len(maps.bio) - 1}"
        )
    has_offsets = "token_starts" in table.column_names and "token_ends" in table.column_names
    if has_offsets:
        starts, start_offsets = _flat_list_column(table, "token_starts")
        ends, end_offsets = _flat_list_column(table, "token_ends")
        if not (np.array_equal(start_offsets, tag_offsets) and np.array_equal(end_offsets, tag_offsets)):
            raise UserError("ner_tags, token_starts and token_ends differ in length for some article")
        tokens = None
    else:
        tokens = table.column("tokens").to_pylist()
    out = []
    for number, article_id in enumerate(ids):
        begin, stop = tag_offsets[number], tag_offsets[number + 1]
        if tokens is None:
            token_starts, token_ends = starts[begin:stop], ends[begin:stop]
        else:
            if len(tokens[number] or []) != stop - begin:
                raise UserError(f"article {article_id}: {len(tokens[number] or [])} tokens but {stop - begin} ner_tags")
            token_starts, token_ends = token_offsets(texts[number], tokens[number] or [], article_id)
        document = {
            target: _name(names, (stances[number] or {}).get(target), f"article {article_id} stance {target}")
            for target, names in maps.document.items()
        }
        out.append(
            GoldArticle(
                article_id, texts[number], entities[number], document, tags[begin:stop], token_starts, token_ends
            )
        )
    return out


def _manifest_version(folder: Path) -> str | None:
    for name in ("manifest.json", "MANIFEST.json"):
        path = folder / name
        if path.is_file():
            try:
                data = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                return None
            if isinstance(data, dict) and isinstance(data.get("version"), str):
                return data["version"]
    return None


def _load_dataset_dict(source: str, config: str, revision: str | None, cache_dir: str | None) -> Any:
    """`datasets.load_dataset`; a local folder gets `cache_dir` (private), a Hub repo the normal cache."""
    import datasets
    from datasets.utils.logging import is_progress_bar_enabled

    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    if cache_dir:
        kwargs["cache_dir"] = cache_dir
    bars_were_on = is_progress_bar_enabled()
    if cache_dir:  # a private throw-away cache: "generating" a local release is an internal step
        datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(source, config, **kwargs)
    except (FileNotFoundError, ValueError, OSError, datasets.exceptions.DatasetNotFoundError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "" if cache_dir else " (no such local folder; tried it as a Hub repo id)"
        raise UserError(f"cannot load dataset {source!r}, config {config!r}{where}: {first_line}") from None
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


def load_release(
    dataset: str | None = None,
    *,
    config: str = "default",
    split: str = "test",
    revision: str | None = None,
    extra_splits: tuple[str, ...] = (),
    scheme: Scheme | None = None,
) -> Release:
    """Load `split` (and `extra_splits`, e.g. train for baselines) of a release folder or Hub repo."""
    scheme = scheme or load_scheme()
    local = Path(dataset) if dataset else newest_release_dir()
    is_local = local.is_dir()
    if dataset and not is_local and not HUB_REPO_ID.match(dataset):
        raise UserError(f"dataset folder not found: {dataset}")
    source = str(local.resolve()) if is_local else str(dataset)
    with tempfile.TemporaryDirectory(prefix="newsstance-hf-") as tmp:
        dataset_dict = _load_dataset_dict(source, config, revision, tmp if is_local else None)
        wanted = (split, *extra_splits)
        for name in wanted:
            if name not in dataset_dict:
                raise UserError(f"dataset {source!r} has no split {name!r} (splits: {', '.join(dataset_dict)})")
        maps = label_maps(dataset_dict[split].features, scheme)
        loaded = {name: gold_articles(dataset_dict[name].data.table, maps) for name in wanted}
    version = None
    if is_local:
        version = _manifest_version(local) or (local.name if SEMVER.match(local.name) else None)
    elif revision and SEMVER.match(revision):
        version = revision.lstrip("v")
    return Release(
        dataset_id=source,
        config=config,
        split=split,
        version=version,
        revision=revision,
        articles=loaded[split],
        local_path=local.resolve() if is_local else None,
        other_splits={name: loaded[name] for name in extra_splits},
    )
