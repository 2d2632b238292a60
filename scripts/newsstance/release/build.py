"""`build_release`: normalised articles + gold annotations -> a versioned, validated release folder.

Order matters for safety: inputs are validated and every integrity check runs on the
final arrow tables before a byte is written; files are then written into a temporary
folder next to `out`, the card is parsed back and every config is loaded with
`datasets.load_dataset` and a fresh cache, and only then is the folder renamed to
`out/<version>` (and the frozen split file updated). A failure leaves `out` untouched.
Data files are content-addressed (`data/<config>/<split>-<sha8>.parquet`) so datasets'
cache, which keys a local folder by file names rather than content, cannot serve stale rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import math
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features
from tqdm import tqdm

from newsstance import __version__
from newsstance.errors import UserError
from newsstance.paths import project_root
from newsstance.records import Record, write_json
from newsstance.release import card as card_mod
from newsstance.release import versions as ver
from newsstance.release.card_context import CardInputs, card_context
from newsstance.release.features import ARTICLES, DEFAULT, SILVER, SPLITS, features_for
from newsstance.release.integrity import IntegrityError, check_release
from newsstance.release.rows import Columns, config_columns, expand_paths, load_articles, load_gold
from newsstance.release.splits import (
    DEFAULT_RATIOS,
    assign_splits,
    clusters_of,
    frozen_records,
    parse_ratios,
    read_frozen,
    write_frozen,
)
from newsstance.release.tokens import TOKEN_PATTERN
from newsstance.scheme import Scheme, load_scheme

ROW_GROUP_SIZE = 1000
MAX_ROWS_PER_SHARD = 50_000


@dataclass(frozen=True)
class ReleaseResult:
    """What `build_release` made (or found unchanged)."""

    version: str
    path: Path
    rows: dict[str, dict[str, int]]
    diff: dict[str, Any]
    built: bool = True
    new_split_ids: list[str] = field(default_factory=list)

    @property
    def load_line(self) -> str:
        return f'datasets.load_dataset("{self.path}")'


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def to_tables(
    columns: Mapping[str, Mapping[str, Columns]], features: Mapping[str, Features]
) -> dict[str, dict[str, pa.Table]]:
    """config -> split -> arrow table with the HF features embedded.

    An empty split is left out: datasets cannot read a parquet file without rows, so a corpus too
    small to fill every split releases fewer splits rather than a release that does not load.
    """
    tables: dict[str, dict[str, pa.Table]] = {}
    for config, splits in columns.items():
        tables[config] = {split: splits[split].table() for split in SPLITS if split in splits and len(splits[split])}
        if any(t.schema != features[config].arrow_schema for t in tables[config].values()):
            raise IntegrityError(f"{config}: built arrow schema differs from the features")
    return tables


def write_split(
    table: pa.Table, folder: Path, config: str, split: str, max_rows: int = MAX_ROWS_PER_SHARD
) -> list[str]:
    """Write zstd parquet shard(s) named by their content hash; returns paths relative to `folder`."""
    target = folder / "data" / config
    target.mkdir(parents=True, exist_ok=True)
    shards = max(1, math.ceil(table.num_rows / max_rows))
    names = []
    for index in range(shards):
        part = table.slice(index * max_rows, max_rows)
        tmp = target / f".{split}-{index}.tmp"
        pq.write_table(part, tmp, compression="zstd", row_group_size=ROW_GROUP_SIZE)
        digest = ver.sha256_file(tmp)[:8]
        stem = split if shards == 1 else f"{split}-{index:05d}-of-{shards:05d}"
        name = f"{stem}-{digest}.parquet"
        tmp.rename(target / name)
        names.append(f"data/{config}/{name}")
    return names


def verify_with_fresh_cache(
    release_dir: Path, tables: Mapping[str, Mapping[str, pa.Table]], features: Mapping[str, Features]
) -> None:
    """Load every config with `datasets.load_dataset` and an empty cache; rows must equal what was built."""
    import datasets
    from datasets.utils.logging import is_progress_bar_enabled

    bars_were_on = is_progress_bar_enabled()
    datasets.disable_progress_bars()  # an internal check: our own "loading the release" line says enough
    try:
        _load_and_compare(release_dir, tables, features)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


def _load_and_compare(
    release_dir: Path, tables: Mapping[str, Mapping[str, pa.Table]], features: Mapping[str, Features]
) -> None:
    import datasets

    with tempfile.TemporaryDirectory(prefix="newsstance-verify-") as cache:
        for config, splits in tables.items():
            try:
                loaded = datasets.load_dataset(str(release_dir), config, cache_dir=cache)
            except Exception as exc:  # datasets raises many types; all mean the release does not load
                raise IntegrityError(f"the release does not load with datasets ({config}): {exc}") from None
            if loaded.keys() != set(splits):
                raise IntegrityError(f"{config}: load_dataset gives splits {sorted(loaded)} not {sorted(splits)}")
            for split, table in splits.items():
                got = loaded[split]
                if got.features != features[config]:
                    raise IntegrityError(f"{config}/{split}: loaded features differ from the built ones")
                if not got.data.table.equals(table):
                    raise IntegrityError(f"{config}/{split}: loaded rows differ from the built rows")


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


def _inputs_digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _load_silver(
    articles: list[Record], scheme: Scheme, silver_model: str | None, silver_predictions: Path | None, show: bool
) -> Any:
    canonical = [a for a in articles if a.get("duplicate_of") is None]
    if silver_predictions is not None:
        from newsstance.release.silver import silver_from_predictions

        return silver_from_predictions(silver_predictions, {a["id"]: a for a in canonical})
    if silver_model:
        from newsstance.release.silver import silver_from_spacy

        with tqdm(total=len(canonical), desc=f"silver ({silver_model})", disable=not show, file=sys.stderr) as bar:
            return silver_from_spacy(canonical, scheme, silver_model, progress=bar)
    return None


def build_release(
    *,
    version: str | None = None,
    out: Path | str | None = None,
    articles: Sequence[Path | str] | None = None,
    gold: Path | str | None = None,
    splits: Path | str | None = None,
    ratios: Sequence[float] | str = DEFAULT_RATIOS,
    license_id: str = "other",
    scheme: Scheme | None = None,
    silver_model: str | None = None,
    silver_predictions: Path | str | None = None,
    agreement: Path | str | None = None,
    results: Path | str | None = None,
    template: Path | str | None = None,
    pretty_name: str = "newsstance",
    max_rows_per_shard: int = MAX_ROWS_PER_SHARD,
    verify: bool = True,
    progress: bool = True,
    with_benchmarks: bool = False,
) -> ReleaseResult:
    """Build `out/<version>/` (parquet per config/split, README card, manifest, diff) or fail leaving `out` as it was.

    Paths default to the project layout: `corpus/normalized/articles*.jsonl`, `annotations/gold.jsonl`,
    `corpus/splits.jsonl`, `annotations/agreement.json`,
    `dataset_card.md`, `dist`.
    `version=None` picks the next version from the diff (first release 1.0.0; features changed: major; data
    changed: minor; else patch) and, when nothing changed at all, returns the latest release with `built=False`.
    An explicit version that already exists is refused.
    `with_benchmarks=True` runs the baselines on the staged release's test split before it is published
    and renders their leaderboard into this version's card (saved as `benchmarks/results/leaderboard-<v>.json`).
    """
    root = project_root()
    out = Path(out) if out is not None else root / "dist"
    article_paths = expand_paths(articles or [root / "corpus" / "normalized" / "articles*.jsonl"])
    gold_path = Path(gold) if gold is not None else root / "annotations" / "gold.jsonl"
    splits_path = Path(splits) if splits is not None else root / "corpus" / "splits.jsonl"
    agreement_path = Path(agreement) if agreement is not None else root / "annotations" / "agreement.json"
    results_path = Path(results) if results is not None else None
    template_path = Path(template) if template is not None else card_mod.template_path()
    ratios = parse_ratios(ratios)
    card_mod.check_license(license_id)
    if version is not None:
        ver.parse_version(version)
        if (out / version).exists():
            raise UserError(
                f"release {version} already exists in {out}; releases are never overwritten (pick a new version)"
            )
    if agreement is not None and not agreement_path.is_file():
        raise UserError(f"agreement file not found: {agreement_path}")
    if results is not None and not Path(results).is_file():
        raise UserError(f"results file not found: {results_path}")
    if silver_predictions is not None and not Path(silver_predictions).is_file():
        raise UserError(f"silver predictions not found: {silver_predictions}")
    scheme = scheme or load_scheme()

    _say(progress, f"reading {len(article_paths)} article file(s) and {gold_path}")
    return _build(
        version=version,
        out=out,
        root=root,
        article_paths=article_paths,
        gold_path=gold_path,
        splits_path=splits_path,
        agreement_path=agreement_path,
        results_path=results_path,
        template_path=template_path,
        ratios=ratios,
        license_id=license_id,
        scheme=scheme,
        silver_model=silver_model,
        silver_predictions=Path(silver_predictions) if silver_predictions else None,
        pretty_name=pretty_name,
        max_rows_per_shard=max_rows_per_shard,
        verify=verify,
        progress=progress,
        with_benchmarks=with_benchmarks,
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading records and building rows: they allocate millions
    of acyclic objects (dicts, tokens, offsets), and generational collections over them cost about a third
    of that time. Not around spaCy or datasets, whose objects may form cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(
    *,
    version: str | None,
    out: Path,
    root: Path,
    article_paths: list[Path],
    gold_path: Path,
    splits_path: Path,
    agreement_path: Path,
    results_path: Path | None,
    template_path: Path,
    ratios: tuple[float, float, float],
    license_id: str,
    scheme: Scheme,
    silver_model: str | None,
    silver_predictions: Path | None,
    pretty_name: str,
    max_rows_per_shard: int,
    verify: bool,
    progress: bool,
    with_benchmarks: bool = False,
) -> ReleaseResult:
    with _gc_paused():
        records = load_articles(article_paths)
        by_id = {r["id"]: r for r in records}
        gold_records = load_gold(gold_path, by_id, scheme)
        cluster_of = clusters_of(records)
        frozen = read_frozen(splits_path)
        assignment = assign_splits(cluster_of, frozen, set(gold_records), ratios)
    silver = _load_silver(records, scheme, silver_model, silver_predictions, progress)

    configs = [DEFAULT, ARTICLES, *([SILVER] if silver is not None else [])]
    features = {config: features_for(scheme, config) for config in configs}
    with _gc_paused(), tqdm(total=len(records), desc="rows", disable=not progress, file=sys.stderr) as bar:
        columns = config_columns(
            records,
            gold_records,
            assignment.split_of,
            scheme,
            {c: f.arrow_schema for c, f in features.items()},
            silver,
            progress=bar,
        )
        tables = to_tables(columns, features)
        del columns
    gold_methods = Counter(record["method"] for record in gold_records.values())
    del records, by_id, gold_records  # the arrow tables hold everything from here on
    for config, splits_ in tables.items():
        empty = [s for s in SPLITS if s not in splits_]
        if empty:
            _say(progress, f"warning: {config} has no rows for {', '.join(empty)}; those splits are left out")
    _say(progress, "integrity checks")
    check_release(
        tables,
        features,
        cluster_of,
        allow_missing={
            DEFAULT: {("entities", "[]", "stance")},
            SILVER: {("entities", "[]", "stance"), *(("stances", t) for t in scheme.target_ids)},
        },
    )

    snapshot = ver.snapshot_from_tables(tables, scheme.entity_names, scheme.stance_names, scheme.target_ids)
    existing = ver.existing_versions(out)
    previous = (existing[-1] if existing else None) if version is None else ver.previous_version(out, version)
    prev_manifest = ver.read_manifest(out / previous) if previous else None
    before = None
    if previous:
        prev_tables = ver.read_release_tables(
            out / previous, {ARTICLES: ("id", *ver.ARTICLE_FIELDS), DEFAULT: ("id", "entities", "stances")}
        )
        before = ver.snapshot_from_tables(prev_tables, scheme.entity_names, scheme.stance_names, scheme.target_ids)
    diff = ver.diff_snapshots(before, snapshot, previous)
    features_dict = {c: f.to_dict() for c, f in features.items()}
    features_changed = prev_manifest is not None and prev_manifest.get("features") != features_dict
    agreement_data = _read_json_optional(agreement_path)
    results_data = _read_json_optional(results_path)
    if with_benchmarks:
        results_data = None  # replaced by this version's own leaderboard below; the digest records the flag
    inputs_digest = _inputs_digest(
        license_id,
        pretty_name,
        agreement_data,
        results_data,
        with_benchmarks,
        template_path.read_text(encoding="utf-8") if template_path.is_file() else None,
        silver.model if silver else None,
        ratios,
    )
    bump = ver.bump_for(diff, features_changed)
    unchanged = prev_manifest is not None and bump == "patch" and prev_manifest.get("inputs_digest") == inputs_digest
    if version is None:
        if unchanged:
            _say(progress, f"nothing changed since {previous}; keeping {out / previous}")
            return ReleaseResult(previous, out / previous, prev_manifest["rows"], ver.diff_summary(diff), built=False)
        version = ver.next_version(previous, bump)
        if (out / version).exists():
            raise UserError(f"release {version} already exists in {out}; pass --version")

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".newsstance-build-{version}-", dir=out.parent))
    try:
        _say(progress, f"writing release {version}")
        data_files = {
            c: {s: write_split(t, staging, c, s, max_rows_per_shard) for s, t in splits_.items()}
            for c, splits_ in tables.items()
        }
        rows = {c: {s: t.num_rows for s, t in splits_.items()} for c, splits_ in tables.items()}
        written = {
            c: {s: sum(pq.read_metadata(staging / f).num_rows for f in files) for s, files in fs.items()}
            for c, fs in data_files.items()
        }
        if written != rows:
            raise IntegrityError(f"rows in the written parquet files {written} != rows built {rows}")
        git_head, git_dirty = ver.git_commit(root)
        now = datetime.now(UTC).replace(microsecond=0)
        history = [
            *(prev_manifest.get("history", []) if prev_manifest else []),
            {"version": version, "date": now.date().isoformat(), "rows": rows, **ver.diff_summary(diff)},
        ]
        inputs = CardInputs(
            scheme=scheme,
            version=version,
            release_date=now.date().isoformat(),
            pretty_name=pretty_name,
            license_id=license_id,
            tables=tables,
            features=features,
            data_files=data_files,
            rows=rows,
            snapshot=snapshot,
            diff=diff,
            history=history,
            gold_methods=gold_methods,
            agreement=agreement_data,
            results=results_data,
            silver_model=silver.model if silver else None,
            ratios=ratios,
            tool_version=__version__,
            git_commit=git_head,
            root=root,
        )
        yaml_data = card_mod.card_data(
            pretty_name=pretty_name,
            license_id=license_id,
            languages=inputs.languages(),
            num_rows=max(sum(r.values()) for r in rows.values()),
            silver=silver is not None,
            data_files=data_files,
            features=features,
            split_rows=rows,
            split_bytes={c: {s: t.nbytes for s, t in sp.items()} for c, sp in tables.items()},
            version=version,
        )
        readme = card_mod.render_card(template_path, card_context(inputs, yaml_data.to_yaml()))
        card_mod.validate_card(readme, features, rows, staging)
        (staging / "README.md").write_text(readme, encoding="utf-8")
        if with_benchmarks and "test" in rows.get(DEFAULT, {}):
            results_data = _run_benchmarks(staging, version, root, progress)
            inputs = dataclasses.replace(inputs, results=results_data)
            readme = card_mod.render_card(template_path, card_context(inputs, yaml_data.to_yaml()))
            card_mod.validate_card(readme, features, rows, staging)
            (staging / "README.md").write_text(readme, encoding="utf-8")
        if verify:
            _say(progress, "loading the release with datasets and a fresh cache")
            verify_with_fresh_cache(staging, tables, features)
        write_json(staging / ver.DIFF, diff)
        file_names = [f for fs in data_files.values() for files in fs.values() for f in files]
        manifest = {
            "name": pretty_name,
            "version": version,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "license": license_id,
            "tool_version": __version__,
            "git_commit": git_head,
            "git_dirty": git_dirty,
            "scheme_version": scheme.scheme_version,
            "article_schema_version": _article_schema_version(),
            "configs": {
                c: {s: {"rows": rows[c][s], "files": files} for s, files in fs.items()} for c, fs in data_files.items()
            },
            "rows": rows,
            "files": ver.file_entries(staging, [*file_names, "README.md", ver.DIFF]),
            "features": features_dict,
            "tokenizer": {"pattern": TOKEN_PATTERN, "split_at_entity_boundaries": True},
            "splits": {
                "ratios": list(ratios),
                "file": _relative(splits_path, root),
                "new_ids": len(assignment.new_ids),
            },
            "silver_model": silver.model if silver else None,
            "inputs": {
                "articles": [{"path": _relative(p, root), "sha256": ver.sha256_file(p)} for p in article_paths],
                "gold": {"path": _relative(gold_path, root), "sha256": ver.sha256_file(gold_path)},
            },
            "inputs_digest": inputs_digest,
            "previous_version": previous,
            "diff": ver.diff_summary(diff),
            "history": history,
        }
        write_json(staging / ver.MANIFEST, manifest)
        out.mkdir(parents=True, exist_ok=True)
        target = out / version
        if target.exists():
            raise UserError(f"release {version} appeared in {out} while building; not overwriting it")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_frozen(splits_path, frozen_records(frozen, assignment, version))
    _say(progress, f"built {target}")
    return ReleaseResult(version, target, rows, ver.diff_summary(diff), new_split_ids=assignment.new_ids)


def _run_benchmarks(staging: Path, version: str, root: Path, progress: bool) -> dict[str, Any]:
    """Score the baselines on the staged release's test split; keep the results next to the others."""
    import datasets
    from datasets.utils.logging import is_progress_bar_enabled

    from newsstance.evaluate.leaderboard import run_leaderboard

    _say(progress, "running the baselines on the test split for the card's leaderboard")
    bars_were_on = is_progress_bar_enabled()
    datasets.disable_progress_bars()  # loading the staged release is an internal step
    try:
        results = run_leaderboard(dataset=staging, split="test", progress=progress)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    write_json(root / "benchmarks" / "results" / f"leaderboard-{version}.json", results)
    return results


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _article_schema_version() -> str | None:
    from newsstance.records import validator

    return validator("article.schema.json").schema.get("x-schema-version")
