"""Read a built release (local folder or Hub repo) into gold articles for scoring.

Everything goes through `datasets.load_dataset`, as a user would. A local folder is
loaded with a private, throw-away cache: `load_dataset` keys its cache on the folder's path
and file names, so it can serve stale rows for a folder rebuilt in place (the test
`test_rebuilt_release_is_never_scored_from_a_stale_cache` shows it), and a scorer must never do that.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from newsstance.errors import UserError
from newsstance.evaluate.bio import token_offsets
from newsstance.paths import project_root
from newsstance.scheme import Scheme, load_scheme

SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w-]*(?:\.[\w-]+)*/[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True, slots=True)
class Span:
    """An entity mention in code-point offsets: [start, end), label name, mention stance or None."""

    start: int
    end: int
    label: str
    stance: str | None = None


IntArray = Sequence[int] | np.ndarray  # a list of ints or a numpy view into a flat column


@dataclass(slots=True)
class GoldArticle:
    """A gold article; tag and offset arrays may be numpy views into the split's flat columns."""

    id: str
    text: str
    entities: list[Span]
    stances: dict[str, str | None]
    ner_tags: IntArray
    token_starts: IntArray
    token_ends: IntArray


@dataclass
class Release:
    """One split of a release, plus where it came from (for the results file)."""

    dataset_id: str
    config: str
    split: str
    version: str | None
    revision: str | None
    gold: GoldSplit
    local_path: Path | None = None
    other_splits: dict[str, list[GoldArticle]] = field(default_factory=dict)

    @cached_property
    def articles(self) -> list[GoldArticle]:
        """The split's articles as objects (texts included): for baselines; scoring reads `gold`."""
        return self.gold.articles()


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


def _flat_list_column(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (flat values, offsets): one numpy array, no Python object per token."""
    import pyarrow.compute as pc

    chunked = table.column(column)
    lengths = pc.fill_null(pc.list_value_length(chunked), 0).to_numpy()
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    values = pc.list_flatten(chunked).to_numpy() if len(chunked) else np.zeros(0, dtype=np.int64)
    return np.asarray(values, dtype=np.int64), offsets


def _entity_columns(table: pa.Table, maps: LabelMaps) -> dict[str, np.ndarray]:
    """Entities of every row as flat arrays (offsets, start, end, label id, stance id or -1), range-checked."""
    import pyarrow.compute as pc

    chunked = table.column("entities")
    lengths = pc.fill_null(pc.list_value_length(chunked), 0).to_numpy()
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    flat = pc.list_flatten(chunked)
    fields = {
        name: np.asarray(
            pc.fill_null(pc.struct_field(flat, name), -1).to_numpy() if len(flat) else np.zeros(0), dtype=np.int64
        )
        for name in ("start", "end", "label", "stance")
    }
    ids = table.column("id")
    for what, names in (("label", maps.entity), ("stance", maps.stance)):
        values = fields[what]
        low = 0 if what == "label" else -1
        bad = np.flatnonzero((values < low) | (values >= len(names)))
        if bad.size:
            row = int(np.searchsorted(offsets, bad[0], side="right")) - 1
            raise UserError(
                f"article {ids[row].as_py()} entity {int(bad[0] - offsets[row])}: {what} ClassLabel id "
                f"{int(values[bad[0]])} out of range 0..{len(names) - 1}"
            )
    return {
        "offsets": offsets,
        "starts": fields["start"],
        "ends": fields["end"],
        "labels": fields["label"].astype(np.int16),
        "stances": fields["stance"].astype(np.int8),
    }


@dataclass
class GoldSplit:
    """One split's gold as flat columns: what scoring needs, a few bytes per entity and token.

    Texts stay an Arrow array (memory-mapped by `datasets`) until `articles()` is called
    (baselines need them, scoring needs only their lengths). Row `i` of every column is
    article `ids[i]`; `*_offsets[i]:*_offsets[i + 1]` is its slice of a flat column.
    """

    maps: LabelMaps
    ids: list[str]
    texts: Sequence[str] | Any
    text_lengths: np.ndarray
    entity_offsets: np.ndarray
    entity_starts: np.ndarray
    entity_ends: np.ndarray
    entity_labels: np.ndarray
    entity_stances: np.ndarray
    document: np.ndarray  # articles x targets (maps.document order): stance id, -1 = unlabelled
    tag_offsets: np.ndarray
    tags: np.ndarray
    token_starts: np.ndarray
    token_ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def entities(self, row: int) -> list[tuple[int, int, int]]:
        """(start, end, label id) of the row's gold entities."""
        begin, stop = self.entity_offsets[row], self.entity_offsets[row + 1]
        return list(
            zip(
                self.entity_starts[begin:stop].tolist(),
                self.entity_ends[begin:stop].tolist(),
                self.entity_labels[begin:stop].tolist(),
                strict=True,
            )
        )

    def articles(self) -> list[GoldArticle]:
        """Every row as a GoldArticle (names instead of ids, the text included)."""
        texts = self.texts.to_pylist() if hasattr(self.texts, "to_pylist") else list(self.texts)
        targets = list(self.maps.document)
        out = []
        for row, article_id in enumerate(self.ids):
            begin, stop = self.entity_offsets[row], self.entity_offsets[row + 1]
            spans = [
                Span(start, end, self.maps.entity[label], None if stance < 0 else self.maps.stance[stance])
                for start, end, label, stance in zip(
                    self.entity_starts[begin:stop].tolist(),
                    self.entity_ends[begin:stop].tolist(),
                    self.entity_labels[begin:stop].tolist(),
                    self.entity_stances[begin:stop].tolist(),
                    strict=True,
                )
            ]
            stances = {
                target: None if value < 0 else self.maps.document[target][value]
                for target, value in zip(targets, self.document[row].tolist(), strict=True)
            }
            t_begin, t_stop = self.tag_offsets[row], self.tag_offsets[row + 1]
            out.append(
                GoldArticle(
                    article_id,
                    texts[row],
                    spans,
                    stances,
                    self.tags[t_begin:t_stop],
                    self.token_starts[t_begin:t_stop],
                    self.token_ends[t_begin:t_stop],
                )
            )
        return out

    @classmethod
    def from_articles(cls, articles: Sequence[GoldArticle], scheme: Scheme) -> GoldSplit:
        """Columns from GoldArticles (tests and callers that build gold in memory)."""
        maps = LabelMaps(
            scheme.entity_names,
            scheme.stance_names,
            scheme.bio_tags,
            dict.fromkeys(scheme.target_ids, scheme.document_stance_names),
        )
        entity_index = {name: index for index, name in enumerate(scheme.entity_names)}
        stance_index = {name: index for index, name in enumerate(scheme.stance_names)}
        doc_index = {name: index for index, name in enumerate(scheme.document_stance_names)}
        spans = [span for article in articles for span in article.entities]

        def offsets(lengths: list[int]) -> np.ndarray:
            return np.concatenate(([0], np.cumsum(lengths, dtype=np.int64))).astype(np.int64)

        def flat(values: list[IntArray]) -> np.ndarray:
            return np.concatenate([np.asarray(v, dtype=np.int64) for v in values]) if values else np.zeros(0, np.int64)

        return cls(
            maps=maps,
            ids=[article.id for article in articles],
            texts=[article.text for article in articles],
            text_lengths=np.array([len(article.text) for article in articles], dtype=np.int64),
            entity_offsets=offsets([len(article.entities) for article in articles]),
            entity_starts=np.array([s.start for s in spans], dtype=np.int64),
            entity_ends=np.array([s.end for s in spans], dtype=np.int64),
            entity_labels=np.array([entity_index[s.label] for s in spans], dtype=np.int16),
            entity_stances=np.array([-1 if s.stance is None else stance_index[s.stance] for s in spans], dtype=np.int8),
            document=np.array(
                [
                    [
                        -1 if article.stances.get(t) is None else doc_index[str(article.stances[t])]
                        for t in scheme.target_ids
                    ]
                    for article in articles
                ],
                dtype=np.int8,
            ).reshape(len(articles), len(scheme.target_ids)),
            tag_offsets=offsets([len(article.ner_tags) for article in articles]),
            tags=flat([article.ner_tags for article in articles]),
            token_starts=flat([article.token_starts for article in articles]),
            token_ends=flat([article.token_ends for article in articles]),
        )


def gold_split(table: pa.Table, maps: LabelMaps) -> GoldSplit:
    """A split's Arrow table -> GoldSplit, column by column (no Python object per entity or token).

    ClassLabel ids are range-checked here: `datasets` does not check them when reading parquet.
    """
    import pyarrow.compute as pc

    ids = table.column("id").to_pylist()
    texts = table.column("text")
    entities = _entity_columns(table, maps)
    tags, tag_offsets = _flat_list_column(table, "ner_tags")
    if tags.size and (tags.min() < 0 or tags.max() >= len(maps.bio)):
        bad = int(np.flatnonzero((tags < 0) | (tags >= len(maps.bio)))[0])
        article = ids[int(np.searchsorted(tag_offsets, bad, side="right")) - 1]
        raise UserError(
            f"article {article} ner_tags: ClassLabel id {int(tags[bad])} out of range 0..{len(maps.bio) - 1}"
        )
    if "token_starts" in table.column_names and "token_ends" in table.column_names:
        starts, start_offsets = _flat_list_column(table, "token_starts")
        ends, end_offsets = _flat_list_column(table, "token_ends")
        if not (np.array_equal(start_offsets, tag_offsets) and np.array_equal(end_offsets, tag_offsets)):
            raise UserError("ner_tags, token_starts and token_ends differ in length for some article")
    else:  # an older layout: offsets found again in the text, one article at a time
        all_starts: list[int] = []
        all_ends: list[int] = []
        for number, (text, tokens) in enumerate(
            zip(texts.to_pylist(), table.column("tokens").to_pylist(), strict=True)
        ):
            tokens = tokens or []
            if len(tokens) != tag_offsets[number + 1] - tag_offsets[number]:
                raise UserError(
                    f"article {ids[number]}: {len(tokens)} tokens but "
                    f"{tag_offsets[number + 1] - tag_offsets[number]} ner_tags"
                )
            found_starts, found_ends = token_offsets(text, tokens, ids[number])
            all_starts += found_starts
            all_ends += found_ends
        starts, ends = np.array(all_starts, dtype=np.int64), np.array(all_ends, dtype=np.int64)
    document = np.full((len(ids), len(maps.document)), -1, dtype=np.int8)
    stances = table.column("stances")
    for column, (target, names) in enumerate(maps.document.items()):
        raw = pc.fill_null(pc.struct_field(stances, target), -1).to_numpy() if len(ids) else np.zeros(0)
        values = np.asarray(raw, dtype=np.int64)
        wrong = np.flatnonzero((values < -1) | (values >= len(names)))
        if wrong.size:
            raise UserError(
                f"article {ids[int(wrong[0])]} stance {target}: ClassLabel id {int(values[wrong[0]])} "
                f"out of range 0..{len(names) - 1}"
            )
        document[:, column] = values
    return GoldSplit(
        maps=maps,
        ids=ids,
        texts=texts,
        text_lengths=np.asarray(pc.utf8_length(texts).to_numpy(zero_copy_only=False), dtype=np.int64)
        if len(ids)
        else np.zeros(0, np.int64),
        entity_offsets=entities["offsets"],
        entity_starts=entities["starts"],
        entity_ends=entities["ends"],
        entity_labels=entities["labels"],
        entity_stances=entities["stances"],
        document=document,
        tag_offsets=tag_offsets,
        tags=tags.astype(np.int16),
        token_starts=starts,
        token_ends=ends,
    )


def gold_articles(table: pa.Table, maps: LabelMaps) -> list[GoldArticle]:
    """Rows of a split's Arrow table -> GoldArticles (names, texts; for baselines)."""
    return gold_split(table, maps).articles()


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


def hub_repo_id(dataset: str) -> str | None:
    """`dataset` when it can only be a Hub repo id (`owner/name`), None when it looks like a local path.

    A path is anything absolute, starting with `.` or `~`, with a backslash or other than exactly
    one `/`, whose first part is an existing folder (`dist/1.0.1`), or whose name is a version.
    """
    if not HUB_REPO_ID.match(dataset):
        return None
    owner, name = dataset.split("/")
    if Path(owner).expanduser().is_dir() or SEMVER.match(name):
        return None
    return dataset


def check_hub_dataset(repo_id: str, revision: str | None) -> None:
    """One request to the Hub before `load_dataset` (which retries a dead network for half a minute).

    Skipped in offline mode (`HF_HUB_OFFLINE=1`), where `load_dataset` reads only the local cache.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi().dataset_info(repo_id, revision=revision, timeout=10)
    except RepositoryNotFoundError:
        raise UserError(f"dataset {repo_id!r}: no such local folder, and no such dataset on the Hub") from None
    except RevisionNotFoundError:
        raise UserError(f"dataset {repo_id!r} has no revision {revision!r} on the Hub") from None
    except HfHubHTTPError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"dataset {repo_id!r}: the Hub refused it: {first}") from None
    except Exception as exc:  # no network: httpx's ConnectError, timeouts, DNS failures (not all are OSErrors)
        raise UserError(
            f"dataset {repo_id!r}: no such local folder, and the Hub cannot be reached ({type(exc).__name__}); "
            "pass a release folder, or set HF_HUB_OFFLINE=1 to use the local cache"
        ) from None


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
    if dataset and not is_local:
        repo_id = hub_repo_id(dataset)
        if repo_id is None:
            raise UserError(f"dataset folder not found: {dataset} (a Hub dataset is named owner/name)")
        check_hub_dataset(repo_id, revision)
    source = str(local.resolve()) if is_local else str(dataset)
    with tempfile.TemporaryDirectory(prefix="newsstance-hf-") as tmp:
        dataset_dict = _load_dataset_dict(source, config, revision, tmp if is_local else None)
        wanted = (split, *extra_splits)
        for name in wanted:
            if name not in dataset_dict:
                raise UserError(f"dataset {source!r} has no split {name!r} (splits: {', '.join(dataset_dict)})")
        maps = label_maps(dataset_dict[split].features, scheme)
        scored = gold_split(dataset_dict[split].data.table, maps)
        others = {name: gold_articles(dataset_dict[name].data.table, maps) for name in extra_splits}
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
        gold=scored,
        local_path=local.resolve() if is_local else None,
        other_splits=others,
    )
