"""The dataset card: YAML metadata derived from the features, body rendered from `dataset_card.md`.

The YAML `configs` and `dataset_info` are written by datasets' own classes
(`MetadataConfigs`, `DatasetInfosDict`) from the same `Features` the parquet files carry,
and read back with huggingface_hub's `DatasetCard` and the same classes to validate the
card offline. `DatasetCardData` checks no enum values, so the known values of
`license`, `size_categories`, `task_categories` and `task_ids` are listed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from datasets import Features
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from newsstance.errors import UserError
from newsstance.paths import project_root

# Licence ids the Hub accepts (subset of https://huggingface.co/docs/hub/repositories-licenses).
KNOWN_LICENSES = frozenset(
    {
        "apache-2.0",
        "mit",
        "openrail",
        "bigscience-openrail-m",
        "creativeml-openrail-m",
        "bigscience-bloom-rail-1.0",
        "bigcode-openrail-m",
        "afl-3.0",
        "artistic-2.0",
        "bsl-1.0",
        "bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "c-uda",
        "cc",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "cdla-sharing-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "wtfpl",
        "ecl-2.0",
        "epl-1.0",
        "epl-2.0",
        "etalab-2.0",
        "eupl-1.1",
        "eupl-1.2",
        "agpl-3.0",
        "gfdl",
        "gpl",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl",
        "lgpl-2.1",
        "lgpl-3.0",
        "isc",
        "h-research",
        "intel-research",
        "lppl-1.3c",
        "ms-pl",
        "apple-ascl",
        "apple-amlr",
        "mpl-2.0",
        "odc-by",
        "odbl",
        "openmdw-1.0",
        "openrail++",
        "osl-3.0",
        "postgresql",
        "ofl-1.1",
        "ncsa",
        "unlicense",
        "zlib",
        "pddl",
        "lgpl-lr",
        "deepfloyd-if-license",
        "fair-noncommercial-research-license",
        "llama2",
        "llama3",
        "llama3.1",
        "llama3.2",
        "llama3.3",
        "llama4",
        "gemma",
        "unknown",
        "other",
    }
)
SIZE_CATEGORIES = (
    "n<1K",
    "1K<n<10K",
    "10K<n<100K",
    "100K<n<1M",
    "1M<n<10M",
    "10M<n<100M",
    "100M<n<1B",
    "1B<n<10B",
    "10B<n<100B",
    "100B<n<1T",
    "n>1T",
)
KNOWN_TASK_CATEGORIES = frozenset(
    {
        "token-classification",
        "text-classification",
        "text-generation",
        "question-answering",
        "summarization",
        "translation",
        "fill-mask",
        "sentence-similarity",
        "zero-shot-classification",
        "feature-extraction",
        "table-question-answering",
        "text2text-generation",
        "other",
    }
)
KNOWN_TASK_IDS = frozenset(
    {
        "named-entity-recognition",
        "part-of-speech",
        "parsing",
        "lemmatization",
        "word-sense-disambiguation",
        "coreference-resolution",
        "multi-class-classification",
        "multi-label-classification",
        "topic-classification",
        "sentiment-classification",
        "sentiment-analysis",
        "fact-checking",
        "intent-classification",
        "natural-language-inference",
        "semantic-similarity-classification",
        "text-scoring",
        "hate-speech-detection",
        "entity-linking-classification",
        "acceptability-classification",
        "language-identification",
    }
)
KNOWN_CREATORS = frozenset({"crowdsourced", "expert-generated", "found", "machine-generated", "no-annotation", "other"})


def size_category(n: int) -> str:
    bounds = (1_000, 10_000, 100_000, 1_000_000, 10**7, 10**8, 10**9, 10**10, 10**11, 10**12)
    for bound, name in zip(bounds, SIZE_CATEGORIES, strict=False):
        if n < bound:
            return name
    return SIZE_CATEGORIES[-1]


def check_license(license_id: str) -> str:
    if license_id not in KNOWN_LICENSES:
        raise UserError(f"unknown licence id {license_id!r} for the Hub (e.g. cc-by-4.0, cc-by-nc-4.0, other)")
    return license_id


def card_data(
    *,
    pretty_name: str,
    license_id: str,
    license_name: str | None = None,
    license_link: str | None = None,
    languages: list[str],
    num_rows: int,
    silver: bool,
    data_files: Mapping[str, Mapping[str, list[str]]],
    features: Mapping[str, Features],
    split_rows: Mapping[str, Mapping[str, int]],
    split_bytes: Mapping[str, Mapping[str, int]],
    download_bytes: Mapping[str, Mapping[str, int]] | None = None,
    version: str,
    homepage: str | None = None,
) -> DatasetCardData:
    """The YAML metadata: Hub enums, licence fields, `train-eval-index` for NER (seqeval), plus `configs` and
    `dataset_info` (with `download_size`/`dataset_size`) written by datasets' own classes."""
    extra: dict[str, Any] = {}
    if license_id == "other":
        if not (license_name and license_link):
            raise UserError("licence `other` needs a license_name and a license_link (annotations/release.yaml)")
        extra.update(license_name=license_name, license_link=license_link)
    if homepage:
        extra["homepage"] = homepage
    extra["train_eval_index"] = [
        {
            "config": "default",
            "task": "token-classification",
            "task_id": "entity_extraction",
            "splits": {"train_split": "train", "eval_split": "test"},
            "col_mapping": {"tokens": "tokens", "ner_tags": "tags"},
            "metrics": [{"type": "seqeval", "name": "seqeval"}],
        }
    ]
    data = DatasetCardData(
        **extra,
        pretty_name=pretty_name,
        license=check_license(license_id),
        language=languages,
        multilinguality="monolingual" if len(languages) == 1 else "multilingual",
        size_categories=[size_category(num_rows)],
        task_categories=["token-classification", "text-classification"],
        task_ids=["named-entity-recognition", "multi-class-classification"],
        tags=["stance-detection", "news", "named-entity-recognition", "entity-level-stance"],
        annotations_creators=["expert-generated", *(["machine-generated"] if silver else [])],
        language_creators=["found"],
        source_datasets=["original"],
    )
    MetadataConfigs(
        {
            config: {"data_files": [{"split": split, "path": paths} for split, paths in files.items()]}
            for config, files in data_files.items()
        }
    ).to_dataset_card_data(data)
    infos = DatasetInfosDict(
        {
            config: DatasetInfo(
                config_name=config,
                features=features[config],
                version=version,
                download_size=sum((download_bytes or {}).get(config, {}).values()) or None,
                dataset_size=sum(split_bytes[config].values()),
                splits=SplitDict(
                    {
                        split: SplitInfo(name=split, num_examples=n, num_bytes=split_bytes[config][split])
                        for split, n in split_rows[config].items()
                    }
                ),
            )
            for config in data_files
        }
    )
    infos.to_dataset_card_data(data)
    return data


def template_path() -> Path:
    return project_root() / "dataset_card.md"


def render_card(template: Path, context: Mapping[str, Any]) -> str:
    """Render the Jinja2 template (`{{ card_data }}` is the YAML block); undefined names are errors."""
    try:
        source = template.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"card template not found: {template}") from None
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    try:
        return env.from_string(source).render(**context)
    except jinja2.TemplateError as exc:
        raise UserError(f"{template}: cannot render the card ({exc})") from None


def validate_card(
    text: str, features: Mapping[str, Features], split_rows: Mapping[str, Mapping[str, int]], release_dir: Path
) -> None:
    """Parse the card as the Hub and datasets will and compare it with what was built; raise on any mismatch."""
    card = DatasetCard(text)
    data = card.data
    if data.get("license") not in KNOWN_LICENSES:
        raise UserError(f"card: unknown license {data.get('license')!r}")
    if data.get("license") == "other" and not (data.get("license_name") and data.get("license_link")):
        raise UserError("card: license `other` without license_name and license_link")
    evals = data.get("train-eval-index") or data.get("train_eval_index") or []
    for entry in evals:
        if entry.get("config") not in features or set(entry.get("col_mapping", {})) - set(features[entry["config"]]):
            raise UserError(f"card: train-eval-index names an unknown config or column: {entry}")
    for key, known in (
        ("size_categories", SIZE_CATEGORIES),
        ("task_categories", KNOWN_TASK_CATEGORIES),
        ("task_ids", KNOWN_TASK_IDS),
        ("annotations_creators", KNOWN_CREATORS),
        ("language_creators", KNOWN_CREATORS),
    ):
        unknown = [v for v in data.get(key) or [] if v not in known]
        if unknown or not data.get(key):
            raise UserError(f"card: {key} has unknown or no values: {unknown}")
    configs = MetadataConfigs.from_dataset_card_data(data)
    infos = DatasetInfosDict.from_dataset_card_data(data)
    if set(configs) != set(features) or set(infos) != set(features):
        raise UserError(f"card: configs {sorted(configs)} / dataset_info {sorted(infos)} != built {sorted(features)}")
    for config, info in infos.items():
        if info.features != features[config]:
            raise UserError(f"card: dataset_info features of {config} differ from the parquet features")
        yaml_rows = {split: s.num_examples for split, s in info.splits.items()}
        if yaml_rows != dict(split_rows[config]):
            raise UserError(f"card: {config} num_examples {yaml_rows} != rows written {dict(split_rows[config])}")
        for item in configs[config]["data_files"]:
            paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
            missing = [p for p in paths if not (release_dir / p).is_file()]
            if missing:
                raise UserError(f"card: {config}/{item['split']} lists missing files {missing}")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)
