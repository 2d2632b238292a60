"""`ReleaseOptions`: every choice of one build, resolved once (model: datasets' `BuilderConfig`).

`ReleaseOptions.resolve(...)` turns what a caller passed (CLI flags, Python keywords, nothing)
into absolute paths and checked values, with the project's defaults filled in: the gold
default (`resolve_gold`), the project config (`annotations/release.yaml`: licence, homepage,
repository, citation) and the card template. Everything downstream reads this one object
instead of a chain of keyword arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from newsstance.errors import UserError
from newsstance.paths import AGREEMENT_JSON, GOLD_JSONL, SAMPLE_GOLD_JSONL, project_root
from newsstance.records import read_yaml_mapping
from newsstance.release.features import CONFIGS, DEFAULT
from newsstance.release.splits import DEFAULT_RATIOS, parse_ratios
from newsstance.scheme import Scheme, load_scheme

PROJECT_CONFIG = Path("annotations") / "release.yaml"
ADJUDICATED_GOLD = GOLD_JSONL
SAMPLE_GOLD = SAMPLE_GOLD_JSONL
MAX_ROWS_PER_SHARD = 50_000
MAX_SHARD_BYTES = 256 * 1024 * 1024  # the Hub's viewer and datasets both prefer parquet files well under 1 GB


@dataclass(frozen=True)
class GoldChoice:
    """Which gold file a command uses, and why (printed by `run` and `build`)."""

    path: Path
    kind: Literal["explicit", "adjudicated", "sample"]

    def describe(self, root: Path | None = None) -> str:
        shown = _relative(self.path, root or project_root())
        reason = {
            "explicit": "passed with --gold",
            "adjudicated": "adjudicated gold (`newsstance adjudicate`)",
            "sample": "the sample corpus's hand-written gold; no adjudicated gold yet",
        }[self.kind]
        return f"{shown} ({reason})"


def _has_records(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return any(line.strip() for line in handle)
    except OSError:
        return False


def resolve_gold(explicit: Path | str | None = None, root: Path | None = None) -> GoldChoice:
    """The one gold default of `run`, `build`, `baseline` and `evaluate`.

    An explicit path must exist. Otherwise adjudicated gold (`annotations/gold.jsonl`) when it holds at
    least one record, else the sample gold (`annotations/sample/gold.jsonl`). An empty adjudicated file
    never hides the sample gold.
    """
    root = root or project_root()
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"gold file not found: {path} (pass an existing file, or omit --gold for the default)")
        return GoldChoice(path, "explicit")
    adjudicated = root / ADJUDICATED_GOLD
    if _has_records(adjudicated):
        return GoldChoice(adjudicated, "adjudicated")
    sample = root / SAMPLE_GOLD
    if sample.is_file():
        return GoldChoice(sample, "sample")
    raise UserError(
        f"no gold annotations: {ADJUDICATED_GOLD} is {'empty' if adjudicated.is_file() else 'missing'} and there is "
        f"no {SAMPLE_GOLD} (run `newsstance adjudicate` after `newsstance studio pull`, or pass --gold FILE)"
    )


@dataclass(frozen=True)
class ProjectConfig:
    """`annotations/release.yaml`: what the card and Croissant say about the project (all optional)."""

    pretty_name: str = "newsstance"
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    homepage: str | None = None
    repository: str | None = None
    citation: str | None = None
    authors: str = "The newsstance project"
    path: Path | None = None

    @classmethod
    def load(cls, root: Path) -> ProjectConfig:
        path = root / PROJECT_CONFIG
        if not path.is_file():
            return cls()
        data = read_yaml_mapping(path, "project config", empty_ok=True)
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        for key, value in data.items():
            if value is not None and not isinstance(value, str):
                raise UserError(f"{path}: {key} must be a string, got {type(value).__name__}")
        return cls(**{k: v for k, v in data.items() if v is not None}, path=path)

    def as_dict(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "path"}


@dataclass(frozen=True)
class ReleaseOptions:
    """Everything one build needs, resolved and checked. Build it with `ReleaseOptions.resolve`."""

    root: Path
    out: Path
    article_paths: tuple[Path, ...]
    gold: GoldChoice
    splits_path: Path
    agreement_path: Path | None
    results_path: Path | None
    template_path: Path
    ratios: tuple[float, float, float]
    license_id: str
    license_name: str | None
    license_link: str | None
    scheme: Scheme
    project: ProjectConfig
    version: str | None = None
    silver_model: str | None = None
    silver_predictions: Path | None = None
    drop_configs: frozenset[str] = frozenset()
    pretty_name: str = "newsstance"
    max_rows_per_shard: int = MAX_ROWS_PER_SHARD
    max_shard_bytes: int = MAX_SHARD_BYTES
    verify: bool = True
    progress: bool = True
    with_benchmarks: bool = False
    figures: bool = True

    @property
    def wants_silver(self) -> bool:
        return self.silver_model is not None or self.silver_predictions is not None

    @classmethod
    def resolve(
        cls,
        *,
        version: str | None = None,
        out: Path | str | None = None,
        articles: Sequence[Path | str] | None = None,
        gold: Path | str | None = None,
        splits: Path | str | None = None,
        ratios: Sequence[float] | str = DEFAULT_RATIOS,
        license_id: str | None = None,
        scheme: Scheme | None = None,
        silver_model: str | None = None,
        silver_predictions: Path | str | None = None,
        agreement: Path | str | None = None,
        results: Path | str | None = None,
        template: Path | str | None = None,
        pretty_name: str | None = None,
        drop_configs: Sequence[str] = (),
        max_rows_per_shard: int = MAX_ROWS_PER_SHARD,
        max_shard_bytes: int = MAX_SHARD_BYTES,
        verify: bool = True,
        progress: bool = True,
        with_benchmarks: bool = False,
        figures: bool = True,
    ) -> ReleaseOptions:
        """Fill the project defaults in and check every option before any work starts."""
        from newsstance.release import card as card_mod
        from newsstance.release import versions as ver
        from newsstance.release.rows import expand_paths

        root = project_root()
        project = ProjectConfig.load(root)
        out_path = Path(out) if out is not None else root / "dist"
        if version is not None:
            ver.parse_version(version)
            if (out_path / version).exists():
                raise UserError(
                    f"release {version} already exists in {out_path}; releases are never overwritten "
                    "(pick a new version, or omit --version to get the next one)"
                )
        if silver_model and silver_predictions:
            raise UserError("pass either --silver-model or --silver-predictions, not both")
        if silver_predictions is not None and not Path(silver_predictions).is_file():
            raise UserError(f"silver predictions not found: {silver_predictions}")
        agreement_path = Path(agreement) if agreement is not None else root / AGREEMENT_JSON
        if agreement is not None and not agreement_path.is_file():
            raise UserError(f"agreement file not found: {agreement_path}")
        if results is not None and not Path(results).is_file():
            raise UserError(f"results file not found: {results}")
        unknown = sorted(set(drop_configs) - set(CONFIGS))
        if unknown or DEFAULT in drop_configs:
            raise UserError(
                f"--drop-config takes {', '.join(c for c in CONFIGS if c != DEFAULT)}, got {', '.join(drop_configs)}"
            )
        if max_rows_per_shard < 1 or max_shard_bytes < 1024:
            raise UserError("shard limits must be at least 1 row and 1024 bytes")
        license_value = card_mod.check_license(license_id or project.license or "other")
        if license_value == "other" and not (project.license_name and project.license_link):
            where = project.path or root / PROJECT_CONFIG
            raise UserError(
                f"licence `other` needs license_name and license_link in {_relative(where, root)} "
                "(or pass a Hub licence id with --license, e.g. cc-by-4.0)"
            )
        return cls(
            root=root,
            out=out_path,
            article_paths=tuple(expand_paths(articles or [root / "corpus" / "normalized" / "articles*.jsonl"])),
            gold=resolve_gold(gold, root),
            splits_path=Path(splits) if splits is not None else root / "corpus" / "splits.jsonl",
            agreement_path=agreement_path if agreement_path.is_file() else None,
            results_path=Path(results) if results is not None else None,
            template_path=Path(template) if template is not None else card_mod.template_path(),
            ratios=parse_ratios(ratios),
            license_id=license_value,
            license_name=project.license_name if license_value == "other" else None,
            license_link=project.license_link if license_value == "other" else None,
            scheme=scheme or load_scheme(),
            project=project,
            version=version,
            silver_model=silver_model,
            silver_predictions=Path(silver_predictions) if silver_predictions else None,
            drop_configs=frozenset(drop_configs),
            pretty_name=pretty_name or project.pretty_name,
            max_rows_per_shard=max_rows_per_shard,
            max_shard_bytes=max_shard_bytes,
            verify=verify,
            progress=progress,
            with_benchmarks=with_benchmarks,
            figures=figures,
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
