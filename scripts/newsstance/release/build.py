"""`build_release`: normalised articles + gold annotations -> a versioned, validated release folder.

Five stages, each a function of the `ReleaseOptions` and the previous stage's result:

1. `load_inputs`: gold, a light index of every article (the fields the splitter needs), frozen splits,
   the previous release; nothing is written.
2. `build_tables`: the `default` config (gold, small) as arrow tables checked in memory; then the
   `articles` (and `silver`) configs streamed from the article files into size-capped parquet shards
   in a staging folder inside `--out`, checked batch by batch, with the card's statistics and the
   diff snapshot gathered in the same pass. A config not rebuilt is kept from the previous release.
3. `diff_and_version`: what a user of the dataset would see changed -> the version bump and its
   reasons; nothing changed means nothing is built.
4. `write_staged`: card (figures, Croissant), the load check with `datasets` and a fresh cache,
   `diff.json`, `manifest.json`, all inside the staging folder.
5. `publish_staged`: one atomic rename to `out/<version>`, then the frozen split file and the
   leaderboard file. A failure at any point leaves `out` as it was; a killed build's staging folder
   is removed by the next build (see `staging.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import Features
from tqdm import tqdm

from newsstance import __version__
from newsstance.errors import UserError
from newsstance.records import Record, read_jsonl, write_json, write_jsonl
from newsstance.release import card as card_mod
from newsstance.release import versions as ver
from newsstance.release.card_context import CardInputs, card_context
from newsstance.release.features import ARTICLES, DEFAULT, SILVER, SPLITS, features_for
from newsstance.release.integrity import IntegrityError, check_release, check_splits_disjoint
from newsstance.release.options import ReleaseOptions
from newsstance.release.rows import (
    Columns,
    LabelIds,
    Silver,
    annotated_row,
    article_row,
    iter_articles,
    load_articles,
    load_gold,
)
from newsstance.release.shards import ShardWriter
from newsstance.release.splits import SplitAssignment, assign_splits, clusters_of, frozen_records, read_frozen
from newsstance.release.staging import (
    STAGING_PREFIX,
    clean_all_stale,
    link_or_copy,
    os_error,
    owned_tempdir,
    publish_dir,
    verify_dir,
)
from newsstance.release.stats import ArticleStats
from newsstance.release.tokens import TOKEN_PATTERN

STREAMED = (ARTICLES, SILVER)
LEADERBOARD_FILE = "leaderboard.json"


@dataclass(frozen=True)
class ReleaseResult:
    """What `build_release` made (or found unchanged)."""

    version: str
    path: Path
    rows: dict[str, dict[str, int]]
    diff: dict[str, Any]
    built: bool = True
    new_split_ids: list[str] = field(default_factory=list)
    bump: str | None = None
    reasons: list[str] = field(default_factory=list)
    gold: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def load_line(self) -> str:
        return f'datasets.load_dataset("{self.path}")'


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading records and building rows: they allocate millions
    of acyclic objects, and generational collections over them cost about a third of that time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_release(options: ReleaseOptions | None = None, **kwargs: Any) -> ReleaseResult:
    """Build `out/<version>/` (parquet per config/split, card, figures, Croissant, manifest, diff) or fail
    leaving `out` as it was. Pass a `ReleaseOptions`, or the keywords of `ReleaseOptions.resolve`.

    Without a version the next one is computed from what changed (`versions.decide_bump`); when nothing a
    user can see changed, the latest release is returned with `built=False`.
    """
    opts = options or ReleaseOptions.resolve(**kwargs)
    _say(opts.progress, f"gold: {opts.gold.describe(opts.root)}")
    try:
        inputs = load_inputs(opts)
        default = build_default(opts, inputs)
    except OSError as exc:
        raise UserError(f"cannot read {exc.filename or 'an input file'}: {exc.strerror or exc}") from None
    try:
        clean_all_stale(opts.out)
        staging = owned_tempdir(opts.out, f"{STAGING_PREFIX}{opts.version or 'next'}-")
    except OSError as exc:
        raise os_error(exc, opts.out) from None
    try:
        built = build_tables(opts, inputs, default, staging)
        plan = diff_and_version(opts, inputs, built)
        if plan is None:
            shutil.rmtree(staging, ignore_errors=True)
            assert inputs.previous is not None and inputs.prev_manifest is not None
            return ReleaseResult(
                inputs.previous,
                opts.out / inputs.previous,
                inputs.prev_manifest["rows"],
                {},
                built=False,
                gold=opts.gold.describe(opts.root),
            )
        write_staged(opts, inputs, built, plan, staging)
        target = publish_staged(opts, inputs, plan, staging)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise os_error(exc, opts.out) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReleaseResult(
        plan.version,
        target,
        built.rows,
        ver.diff_summary(plan.diff),
        new_split_ids=inputs.assignment.new_ids,
        bump=plan.bump,
        reasons=plan.reasons,
        gold=opts.gold.describe(opts.root),
        warnings=inputs.warnings,
    )


# --- 1. load inputs -----------------------------------------------------------


@dataclass
class Inputs:
    gold: dict[str, Record]
    gold_articles: dict[str, Record]
    cluster_of: dict[str, str]
    frozen: dict[str, Record]
    assignment: SplitAssignment
    n_articles: int
    silver: Silver | None
    previous: str | None
    prev_manifest: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    @property
    def gold_methods(self) -> Counter[str]:
        return Counter(record["method"] for record in self.gold.values())


def _gold_ids(path: Path) -> set[str]:
    return {r["article_id"] for r in read_jsonl(path) if isinstance(r, dict) and isinstance(r.get("article_id"), str)}


def _stance_labels(gold: Mapping[str, Record]) -> dict[str, set[str]]:
    """Article id -> the stance classes its gold carries (`<target>=<label>` and `mention=<label>`)."""
    labels: dict[str, set[str]] = {}
    for article_id, record in gold.items():
        found = {f"{t}={v}" for t, v in (record.get("stances") or {}).items() if v is not None}
        found |= {f"mention={e['stance']}" for e in record["entities"] if e.get("stance") is not None}
        labels[article_id] = found
    return labels


def load_inputs(opts: ReleaseOptions) -> Inputs:
    """Gold, the light article index, clusters and splits, silver, the previous release."""
    wanted = _gold_ids(opts.gold.path)
    gold_articles: dict[str, Record] = {}
    _say(opts.progress, f"reading {len(opts.article_paths)} article file(s)")
    with _gc_paused():
        index = load_articles(opts.article_paths, light=True, tap=_keeper(wanted, gold_articles))
        gold = load_gold(opts.gold.path, gold_articles, opts.scheme)
        cluster_of = clusters_of(index)
        frozen = read_frozen(opts.splits_path)
        warnings: list[str] = []
        assignment = assign_splits(cluster_of, frozen, set(gold), opts.ratios, _stance_labels(gold), warnings)
    for warning in warnings:
        _say(opts.progress, f"warning: {warning}")
    canonical = {r["id"] for r in index if r.get("duplicate_of") is None}
    del index
    silver = _load_silver(opts, canonical)
    existing = ver.existing_versions(opts.out)
    if opts.version is None:
        previous = existing[-1] if existing else None
    else:
        previous = ver.previous_version(opts.out, opts.version)
    prev_manifest = ver.read_manifest(opts.out / previous) if previous else None
    return Inputs(
        gold, gold_articles, cluster_of, frozen, assignment, len(canonical), silver, previous, prev_manifest, warnings
    )


def _keeper(wanted: set[str], keep: dict[str, Record]) -> Callable[[Record], None]:
    """Keep the full record of every gold article on the side while the index is read."""

    def tap(record: Record) -> None:
        if record["id"] in wanted:
            keep[record["id"]] = record

    return tap


def _canonical_records(opts: ReleaseOptions, canonical: set[str]) -> Iterator[Record]:
    return (r for r in iter_articles(opts.article_paths, validate=False) if r["id"] in canonical)


def _load_silver(opts: ReleaseOptions, canonical: set[str]) -> Silver | None:
    if opts.silver_predictions is not None:
        from newsstance.release.silver import silver_from_predictions

        by_id = {r["id"]: r for r in _canonical_records(opts, canonical)}
        return silver_from_predictions(opts.silver_predictions, by_id)
    if opts.silver_model:
        from newsstance.release.silver import silver_from_spacy

        desc = f"silver ({opts.silver_model})"
        with tqdm(total=len(canonical), desc=desc, disable=not opts.progress, file=sys.stderr) as bar:
            return silver_from_spacy(_canonical_records(opts, canonical), opts.scheme, opts.silver_model, progress=bar)
    return None


# --- 2. build tables ------------------------------------------------------------


@dataclass
class Built:
    features: dict[str, Features]
    tables: dict[str, dict[str, pa.Table]]  # the `default` config, in memory
    data_files: dict[str, dict[str, list[str]]]
    rows: dict[str, dict[str, int]]
    split_bytes: dict[str, dict[str, int]]
    snapshot: ver.Snapshot
    stats: ArticleStats
    kept: dict[str, str] = field(default_factory=dict)  # config -> version it was kept from
    silver_model: str | None = None


def to_tables(
    columns: Mapping[str, Mapping[str, Columns]], features: Mapping[str, Features]
) -> dict[str, dict[str, pa.Table]]:
    """config -> split -> arrow table with the HF features embedded; empty splits left out (datasets cannot
    read a parquet file without rows)."""
    tables: dict[str, dict[str, pa.Table]] = {}
    for config, splits in columns.items():
        tables[config] = {split: splits[split].table() for split in SPLITS if split in splits and len(splits[split])}
        if any(t.schema != features[config].arrow_schema for t in tables[config].values()):
            raise IntegrityError(f"{config}: built arrow schema differs from the features")
    return tables


def build_default(opts: ReleaseOptions, inputs: Inputs) -> dict[str, pa.Table]:
    """The gold config in memory (it is small), checked before any folder is created."""
    features = features_for(opts.scheme, DEFAULT)
    schema = features.arrow_schema
    ids = LabelIds.of(opts.scheme)
    columns: dict[str, Columns] = {}
    with _gc_paused():
        for article_id in sorted(inputs.gold):
            record, article = inputs.gold[article_id], inputs.gold_articles[article_id]
            split = inputs.assignment.split_of[article_id]
            row = annotated_row(article, record["entities"], record["stances"], opts.scheme, ids)
            columns.setdefault(split, Columns(schema)).append(row)
    tables = to_tables({DEFAULT: columns}, {DEFAULT: features})
    check_release(tables, {DEFAULT: features}, inputs.cluster_of, {DEFAULT: {("entities", "[]", "stance")}})
    return tables[DEFAULT]


class _StreamedConfig:
    """One streamed config: per split, batches -> integrity checks -> snapshot/statistics -> shards."""

    def __init__(self, opts: ReleaseOptions, config: str, features: Features, staging: Path, built: Built):
        self.config = config
        self.features = features
        self.built = built
        self.allow_missing: set[tuple[str, ...]] = set()
        if config == SILVER:
            self.allow_missing = {("entities", "[]", "stance"), *(("stances", t) for t in opts.scheme.target_ids)}
        self.writers = {
            split: ShardWriter(
                staging, config, split, features.arrow_schema, opts.max_rows_per_shard, opts.max_shard_bytes
            )
            for split in SPLITS
        }
        self.columns = {split: Columns(features.arrow_schema, on_batch=self._sink(split)) for split in SPLITS}

    def _sink(self, split: str) -> Callable[[pa.RecordBatch], None]:
        def handle(batch: pa.RecordBatch) -> None:
            table = pa.Table.from_batches([batch])
            check_release(
                {self.config: {split: table}}, {self.config: self.features}, {}, {self.config: self.allow_missing}
            )
            self.built.snapshot.add_batch(self.config, split, batch)
            if self.config == ARTICLES:
                self.built.stats.add(split, batch)
            self.writers[split].write(batch)

        return handle

    def append(self, split: str, row: dict[str, Any]) -> None:
        self.columns[split].append(row)

    def finish(self) -> None:
        for split in SPLITS:
            self.columns[split].flush()
            names = self.writers[split].close()
            if names:
                self.built.data_files.setdefault(self.config, {})[split] = names
                self.built.rows.setdefault(self.config, {})[split] = self.writers[split].rows
                self.built.split_bytes.setdefault(self.config, {})[split] = self.writers[split].nbytes

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def build_tables(opts: ReleaseOptions, inputs: Inputs, default: dict[str, pa.Table], staging: Path) -> Built:
    """`default` written from memory; `articles`/`silver` streamed into shards; configs not rebuilt kept."""
    scheme = opts.scheme
    kept = _configs_to_keep(opts, inputs)
    streamed = [ARTICLES, *([SILVER] if inputs.silver is not None else [])]
    features = {c: features_for(scheme, c) for c in (DEFAULT, *streamed, *kept)}
    built = Built(
        features=features,
        tables={DEFAULT: default},
        data_files={},
        rows={},
        split_bytes={},
        snapshot=ver.Snapshot(scheme.entity_names, scheme.stance_names),
        stats=ArticleStats(),
        silver_model=inputs.silver.model if inputs.silver else None,
    )
    writer_default = {
        s: ShardWriter(
            staging, DEFAULT, s, features[DEFAULT].arrow_schema, opts.max_rows_per_shard, opts.max_shard_bytes
        )
        for s in default
    }
    for split, table in default.items():
        writer_default[split].write(table)
        built.snapshot.add_batch(DEFAULT, split, table)
        built.data_files.setdefault(DEFAULT, {})[split] = writer_default[split].close()
        built.rows.setdefault(DEFAULT, {})[split] = table.num_rows
        built.split_bytes.setdefault(DEFAULT, {})[split] = table.nbytes
    configs = {c: _StreamedConfig(opts, c, features[c], staging, built) for c in streamed}
    ids = LabelIds.of(scheme)
    silver = inputs.silver
    split_of = inputs.assignment.split_of
    try:
        with (
            _gc_paused(),
            tqdm(total=inputs.n_articles, desc="rows", disable=not opts.progress, file=sys.stderr) as bar,
        ):
            for article in iter_articles(opts.article_paths, validate=False):
                if article.get("duplicate_of") is not None:
                    continue
                article_id = article["id"]
                split = split_of[article_id]
                configs[ARTICLES].append(split, article_row(article, article_id in inputs.gold))
                if silver is not None and silver.covers(article_id):
                    row = annotated_row(
                        article, silver.entities.get(article_id, []), silver.stances.get(article_id, {}), scheme, ids
                    )
                    configs[SILVER].append(split, {**row, "model": silver.model})
                bar.update(1)
            for streamed_config in configs.values():
                streamed_config.finish()
    except BaseException:
        for streamed_config in configs.values():
            streamed_config.abort()
        raise
    _check_cross_config_splits(built, inputs)
    for kept_config, origin in kept.items():
        _keep_config(opts, inputs, built, kept_config, origin, staging)
    for name, splits_ in built.rows.items():
        empty = [s for s in SPLITS if s not in splits_]
        if empty:
            _say(opts.progress, f"warning: {name} has no rows for {', '.join(empty)}; those splits are left out")
    return built


def _check_cross_config_splits(built: Built, inputs: Inputs) -> None:
    """Every gold article sits in the same split in `default` and `articles`; no cluster straddles splits."""
    for config in built.snapshot.configs():
        table = built.snapshot.table(config)
        by_split = {s: pa.table({"id": table.filter(pc.equal(table["split"], s))["id"]}) for s in SPLITS}
        check_splits_disjoint(config, by_split, inputs.cluster_of)
    gold_split = dict(zip(*built.snapshot.table(DEFAULT).select(["id", "split"]).to_pydict().values(), strict=True))
    articles = built.snapshot.table(ARTICLES)
    for article_id, split in zip(articles["id"].to_pylist(), articles["split"].to_pylist(), strict=True):
        other = gold_split.get(article_id)
        if other is not None and other != split:
            raise IntegrityError(
                f"integrity check failed in {ARTICLES}/{split}: article {article_id} is in {other} in the default config"
            )


def _configs_to_keep(opts: ReleaseOptions, inputs: Inputs) -> dict[str, str]:
    """Streamed configs of the previous release that this build does not rebuild and was not told to drop."""
    if inputs.prev_manifest is None or inputs.previous is None:
        return {}
    kept = {}
    for config in inputs.prev_manifest.get("configs", {}):
        if config in (DEFAULT, ARTICLES) or config in opts.drop_configs:
            continue
        if config == SILVER and opts.wants_silver:
            continue
        kept[config] = inputs.prev_manifest.get("kept", {}).get(config, inputs.previous)
    return kept


def _keep_config(opts: ReleaseOptions, inputs: Inputs, built: Built, config: str, origin: str, staging: Path) -> None:
    """Copy (hard link) a config's files from the previous release; refuse when they no longer fit."""
    assert inputs.prev_manifest is not None and inputs.previous is not None
    prev_dir = opts.out / inputs.previous
    if inputs.prev_manifest.get("features", {}).get(config) != built.features[config].to_dict():
        raise UserError(
            f"the `{config}` config of {inputs.previous} cannot be kept: the scheme's features changed; "
            f"rebuild it ({'--silver-model NAME' if config == SILVER else 'see --help'}) or pass --drop-config {config}"
        )
    previous_articles = ver.snapshot_release(prev_dir, opts.scheme.entity_names, opts.scheme.stance_names)
    before, after = previous_articles.table(ARTICLES), built.snapshot.table(ARTICLES)
    if before.sort_by("id") != after.sort_by("id"):
        model = inputs.prev_manifest.get("silver_model") or "NAME"
        raise UserError(
            f"the `{config}` config of {inputs.previous} cannot be kept: the articles changed since; "
            f"rebuild it with --silver-model {model} (or --silver-predictions FILE), or pass --drop-config {config}"
        )
    built.snapshot.copy_config(previous_articles, config)
    for split, info in inputs.prev_manifest["configs"][config].items():
        for name in info["files"]:
            link_or_copy(prev_dir / name, staging / name)
        built.data_files.setdefault(config, {})[split] = list(info["files"])
        built.rows.setdefault(config, {})[split] = info["rows"]
        built.split_bytes.setdefault(config, {})[split] = (
            inputs.prev_manifest.get("split_bytes", {}).get(config, {}).get(split, 0)
        )
    built.kept[config] = origin
    if config == SILVER:
        built.silver_model = inputs.prev_manifest.get("silver_model")
    _say(opts.progress, f"kept the `{config}` config of {inputs.previous} (unchanged; --drop-config {config} drops it)")


# --- 3. diff and version ----------------------------------------------------------


@dataclass
class Plan:
    version: str
    bump: str
    reasons: list[str]
    diff: dict[str, Any]
    card_inputs: dict[str, Any]
    results: Any
    run_benchmarks: bool


def _digest_json(value: Any) -> str | None:
    if value is None:
        return None
    return hashlib.sha256(orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _read_json_optional(path: Path | None) -> Any:
    if path is None or not path.is_file():
        return None
    text = path.read_bytes()
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError:
            raise UserError(f"{path}: not valid JSON or JSON Lines") from None


CARD_INPUT_NAMES = {
    "license": "licence",
    "license_name": "licence name",
    "license_link": "licence link",
    "pretty_name": "dataset name",
    "agreement": "agreement figures",
    "results": "benchmark results",
    "template": "card template",
    "project": "project config (annotations/release.yaml)",
    "ratios": "split ratios for new articles",
}


def diff_and_version(opts: ReleaseOptions, inputs: Inputs, built: Built) -> Plan | None:
    """Compare with the previous release as a user would; None when nothing changed (and no version asked)."""
    before = None
    if inputs.previous is not None:
        before = ver.snapshot_release(opts.out / inputs.previous, opts.scheme.entity_names, opts.scheme.stance_names)
    diff = ver.diff_snapshots(before, built.snapshot, inputs.previous)
    default_changed = bool(diff["rows"].get(DEFAULT) and any(any(c.values()) for c in diff["rows"][DEFAULT].values()))
    prev = inputs.prev_manifest or {}
    results: Any = _read_json_optional(opts.results_path)
    run_benchmarks = False
    if results is None and not default_changed and inputs.previous is not None:
        results = _read_json_optional(opts.out / inputs.previous / LEADERBOARD_FILE)
    if opts.with_benchmarks and results is None:
        run_benchmarks = True
    card_inputs = {
        "license": opts.license_id,
        "license_name": opts.license_name,
        "license_link": opts.license_link,
        "pretty_name": opts.pretty_name,
        "agreement": _digest_json(_read_json_optional(opts.agreement_path)),
        "results": _digest_json(results),
        "template": _digest_json(
            opts.template_path.read_text(encoding="utf-8") if opts.template_path.is_file() else None
        ),
        "project": _digest_json(opts.project.as_dict()),
        "ratios": list(opts.ratios),
    }
    old_card = prev.get("card_inputs", {})
    card_changes = [
        f"{CARD_INPUT_NAMES[k]} changed" + (f" ({old_card.get(k)} -> {v})" if k == "license" else "")
        for k, v in card_inputs.items()
        if inputs.previous is not None and old_card.get(k) != v and not (k == "results" and run_benchmarks)
    ]
    features_after = {c: f.to_dict() for c, f in built.features.items()}
    bump, reasons = ver.decide_bump(
        diff, prev.get("features") if inputs.previous else None, features_after, card_changes
    )
    if bump is None:
        if opts.version is None:
            return None
        bump, reasons = "patch", [f"version {opts.version} requested; nothing a user sees changed"]
    version = opts.version or ver.next_version(inputs.previous, bump)
    if (opts.out / version).exists():
        raise UserError(f"release {version} already exists in {opts.out}; pass --version with a new version")
    diff = {**diff, "version": version, "bump": bump, "reasons": reasons, "kept_configs": built.kept}
    return Plan(version, bump, reasons, diff, card_inputs, results, run_benchmarks)


# --- 4. write staged -------------------------------------------------------------------


@dataclass
class Staged:
    """What `write_staged` learns along the way (shared by the card, Croissant and the manifest)."""

    version: str
    now: datetime
    git_head: str | None
    git_dirty: bool | None
    history: list[dict[str, Any]]
    figures: list[str]


def write_staged(opts: ReleaseOptions, inputs: Inputs, built: Built, plan: Plan, staging: Path) -> None:
    """Figures, card, benchmarks, Croissant, the load check, diff and manifest, inside the staging folder."""
    from newsstance.release import croissant, figures

    _check_written_rows(built, staging)
    git_head, git_dirty = ver.git_commit(opts.root)
    now = datetime.now(UTC).replace(microsecond=0)
    entry = {"version": plan.version, "date": now.date().isoformat(), "rows": built.rows, **ver.diff_summary(plan.diff)}
    agreement = _read_json_optional(opts.agreement_path)
    stats = built.stats.as_dict()
    drawn = figures.render_all(staging, built.snapshot.labels, stats, agreement, opts.scheme) if opts.figures else []
    staged = Staged(
        plan.version, now, git_head, git_dirty, [*(inputs.prev_manifest or {}).get("history", []), entry], drawn
    )
    card_inputs = _card_inputs(opts, inputs, built, plan, staged, stats, agreement)
    _write_card(opts, built, card_inputs, staging)
    if plan.run_benchmarks and "test" in built.rows.get(DEFAULT, {}):
        plan.results = _run_benchmarks(staging, opts.progress)
        plan.card_inputs["results"] = _digest_json(plan.results)  # what a rebuild compares against
        _write_card(opts, built, dataclasses.replace(card_inputs, results=plan.results), staging)
    if plan.results is not None:
        write_json(staging / LEADERBOARD_FILE, plan.results)
    date = now.date().isoformat()
    document = croissant.metadata(opts, plan.version, built.features, built.data_files, built.rows, staging, date)
    write_json(staging / croissant.FILE, document)
    if opts.verify:
        _say(opts.progress, "loading the release with datasets and a fresh cache")
        verify_with_fresh_cache(staging, built.tables, built.rows, built.features, opts.out)
    write_json(staging / ver.DIFF, plan.diff)
    write_json(staging / ver.MANIFEST, _manifest(opts, inputs, built, plan, staged, staging))


def _check_written_rows(built: Built, staging: Path) -> None:
    written = {
        c: {s: sum(pq.read_metadata(staging / f).num_rows for f in files) for s, files in fs.items()}
        for c, fs in built.data_files.items()
    }
    if written != built.rows:
        raise IntegrityError(f"rows in the written parquet files {written} != rows built {built.rows}")


def _card_inputs(
    opts: ReleaseOptions,
    inputs: Inputs,
    built: Built,
    plan: Plan,
    staged: Staged,
    stats: dict[str, Any],
    agreement: Any,
) -> CardInputs:
    return CardInputs(
        scheme=opts.scheme,
        version=staged.version,
        release_date=staged.now.date().isoformat(),
        pretty_name=opts.pretty_name,
        license_id=opts.license_id,
        license_name=opts.license_name,
        license_link=opts.license_link,
        project=opts.project,
        tables=built.tables,
        features=built.features,
        data_files=built.data_files,
        rows=built.rows,
        labels=built.snapshot.labels,
        stats=stats,
        diff=plan.diff,
        history=staged.history,
        gold_methods=inputs.gold_methods,
        agreement=agreement,
        results=plan.results,
        silver_model=built.silver_model,
        ratios=opts.ratios,
        tool_version=__version__,
        git_commit=staged.git_head,
        root=opts.root,
        figures=staged.figures,
        kept=built.kept,
    )


def _write_card(opts: ReleaseOptions, built: Built, card_inputs: CardInputs, staging: Path) -> None:
    """YAML metadata + rendered template -> README.md, parsed back and checked against what was built."""
    download_bytes = {
        c: {s: sum((staging / f).stat().st_size for f in files) for s, files in fs.items()}
        for c, fs in built.data_files.items()
    }
    yaml_data = card_mod.card_data(
        pretty_name=opts.pretty_name,
        license_id=opts.license_id,
        license_name=opts.license_name,
        license_link=opts.license_link,
        languages=card_inputs.languages(),
        num_rows=max(sum(r.values()) for r in built.rows.values()),
        silver=SILVER in built.rows,
        data_files=built.data_files,
        features=built.features,
        split_rows=built.rows,
        split_bytes=built.split_bytes,
        download_bytes=download_bytes,
        version=card_inputs.version,
        homepage=opts.project.homepage,
    )
    readme = card_mod.render_card(opts.template_path, card_context(card_inputs, yaml_data.to_yaml()))
    card_mod.validate_card(readme, built.features, built.rows, staging)
    (staging / "README.md").write_text(readme, encoding="utf-8")


def _manifest(
    opts: ReleaseOptions, inputs: Inputs, built: Built, plan: Plan, staged: Staged, staging: Path
) -> dict[str, Any]:
    """Files with sha256 and size, rows, features, inputs (paths relative to the project root), history."""
    from newsstance.release import croissant

    data = [f for fs in built.data_files.values() for files in fs.values() for f in files]
    extra = [n for n in ("README.md", ver.DIFF, croissant.FILE, LEADERBOARD_FILE, *staged.figures)]
    return {
        "name": opts.pretty_name,
        "version": staged.version,
        "created_at": staged.now.isoformat().replace("+00:00", "Z"),
        "license": opts.license_id,
        "tool_version": __version__,
        "git_commit": staged.git_head,
        "git_dirty": staged.git_dirty,
        "scheme_version": opts.scheme.scheme_version,
        "article_schema_version": _article_schema_version(),
        "configs": {
            c: {s: {"rows": built.rows[c][s], "files": files} for s, files in fs.items()}
            for c, fs in built.data_files.items()
        },
        "rows": built.rows,
        "split_bytes": built.split_bytes,
        "files": ver.file_entries(staging, [*data, *(n for n in extra if (staging / n).is_file())]),
        "features": {c: f.to_dict() for c, f in built.features.items()},
        "tokenizer": {"pattern": TOKEN_PATTERN, "split_at_entity_boundaries": True},
        "splits": {
            "ratios": list(opts.ratios),
            "file": _relative(opts.splits_path, opts.root),
            "new_ids": len(inputs.assignment.new_ids),
        },
        "silver_model": built.silver_model,
        "kept": built.kept,
        "inputs": {
            "articles": [{"path": _relative(p, opts.root), "sha256": ver.sha256_file(p)} for p in opts.article_paths],
            "gold": {
                "path": _relative(opts.gold.path, opts.root),
                "kind": opts.gold.kind,
                "sha256": ver.sha256_file(opts.gold.path),
            },
        },
        "card_inputs": plan.card_inputs,
        "previous_version": inputs.previous,
        "diff": ver.diff_summary(plan.diff),
        "history": staged.history,
    }


def _run_benchmarks(staging: Path, progress: bool) -> dict[str, Any]:
    """Score the baselines on the staged release's test split (written with the release, never before)."""
    import datasets
    from datasets.utils.logging import is_progress_bar_enabled

    from newsstance.evaluate.leaderboard import run_leaderboard

    _say(progress, "running the baselines on the test split for the card's leaderboard")
    bars_were_on = is_progress_bar_enabled()
    datasets.disable_progress_bars()  # loading the staged release is an internal step
    try:
        return run_leaderboard(dataset=staging, split="test", progress=progress)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


def verify_with_fresh_cache(
    release_dir: Path,
    tables: Mapping[str, Mapping[str, pa.Table]],
    rows: Mapping[str, Mapping[str, int]],
    features: Mapping[str, Features],
    out: Path,
) -> None:
    """Load every config with `datasets.load_dataset` and an empty cache next to the release: features and
    row counts must equal what was built, and the in-memory configs row for row."""
    import datasets
    from datasets.utils.logging import is_progress_bar_enabled

    bars_were_on = is_progress_bar_enabled()
    datasets.disable_progress_bars()  # an internal check: our own "loading the release" line says enough
    try:
        with verify_dir(out) as cache:
            for config, splits in rows.items():
                try:
                    loaded = datasets.load_dataset(str(release_dir), config, cache_dir=str(cache))
                except Exception as exc:  # datasets raises many types; all mean the release does not load
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise IntegrityError(f"the release does not load with datasets ({config}): {first}") from None
                if loaded.keys() != set(splits):
                    raise IntegrityError(f"{config}: load_dataset gives splits {sorted(loaded)} not {sorted(splits)}")
                for split, n in splits.items():
                    got = loaded[split]
                    if got.features != features[config]:
                        raise IntegrityError(f"{config}/{split}: loaded features differ from the built ones")
                    if got.num_rows != n:
                        raise IntegrityError(f"{config}/{split}: load_dataset gives {got.num_rows} rows, built {n}")
                    table = tables.get(config, {}).get(split)
                    if table is not None and not got.data.table.equals(table):
                        raise IntegrityError(f"{config}/{split}: loaded rows differ from the built rows")
                del loaded
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


# --- 5. publish -------------------------------------------------------------------------


def publish_staged(opts: ReleaseOptions, inputs: Inputs, plan: Plan, staging: Path) -> Path:
    """Rename the staging folder to `out/<version>`, then swap in the frozen split file (written beside it
    first, so a read-only corpus fails before anything is published) and write the leaderboard file."""
    target = opts.out / plan.version
    splits_tmp = opts.splits_path.with_name(f".{opts.splits_path.name}.{plan.version}.tmp")
    opts.splits_path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(splits_tmp, frozen_records(inputs.frozen, inputs.assignment, plan.version))
    try:
        publish_dir(staging, target)
    except BaseException:
        splits_tmp.unlink(missing_ok=True)
        raise
    os.replace(splits_tmp, opts.splits_path)
    if plan.results is not None and plan.run_benchmarks:
        write_json(opts.root / "benchmarks" / "results" / f"leaderboard-{plan.version}.json", plan.results)
    return target


def _relative(path: Path, root: Path) -> str:
    """Paths in the manifest are relative to the project root (the same on every machine); outside it, the
    file name only, so no absolute path of the building machine is published."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _article_schema_version() -> str | None:
    from newsstance.records import validator

    return validator("article.schema.json").schema.get("x-schema-version")
