"""Everything the card template needs, computed from the built tables and the inputs.

Kept apart from the template so the template stays prose and the numbers stay code:
tables of fields, labels and counts per split, outlets and dates, annotation methods,
agreement figures, benchmark results, version history and the citation.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from newsstance.gold.adjudicate import METHOD_MEANINGS
from newsstance.paths import state_dir
from newsstance.records import validator
from newsstance.release.card import markdown_table
from newsstance.release.features import ARTICLES, DEFAULT, DESCRIPTIONS, SPLITS, describe_feature
from newsstance.release.options import ProjectConfig
from newsstance.release.tokens import TOKEN_PATTERN
from newsstance.scheme import Scheme

FIGURE_TITLES = {
    "entity-types": "Entity mentions per type and split",
    "mention-stance": "Mention stance per split",
    "document-stance": "Document stance per target and split",
    "articles-per-outlet": "Articles per outlet",
    "articles-per-month": "Articles per publication month",
    "agreement": "Inter-annotator agreement per label",
}

CONFIG_PURPOSE = {
    DEFAULT: "Gold-annotated articles: entities with mention stance, tokens + BIO tags, stance per target.",
    ARTICLES: "Every canonical (non-duplicate) article, unannotated, with its metadata.",
    "silver": "Machine pre-annotations (model output, not human-checked) of every canonical article.",
}


@dataclass
class CardInputs:
    scheme: Scheme
    version: str
    release_date: str
    pretty_name: str
    license_id: str
    license_name: str | None
    license_link: str | None
    project: ProjectConfig
    tables: Mapping[str, Mapping[str, pa.Table]]  # the `default` config (small, in memory)
    features: Mapping[str, Any]
    data_files: Mapping[str, Mapping[str, list[str]]]
    rows: Mapping[str, Mapping[str, int]]
    labels: Mapping[str, Mapping[str, int]]  # split -> label key -> count (`default` config)
    stats: Mapping[str, Any]  # `ArticleStats.as_dict()` of the `articles` config
    diff: Mapping[str, Any]
    history: Sequence[Mapping[str, Any]]
    gold_methods: Mapping[str, int]
    agreement: Any
    results: Any
    silver_model: str | None
    ratios: Sequence[float]
    tool_version: str
    git_commit: str | None
    root: Path
    figures: Sequence[str] = ()
    kept: Mapping[str, str] = field(default_factory=dict)

    def languages(self) -> list[str]:
        return list(self.stats.get("languages") or {}) or [self.scheme.language]


def _example(inputs: CardInputs) -> str:
    for split in SPLITS:
        table = inputs.tables[DEFAULT].get(split)
        if table is not None and table.num_rows:
            row = table.slice(0, 1).to_pylist()[0]
            break
    else:
        return "{}"
    if len(row["text"]) > 240:
        row["text"] = row["text"][:240] + " ..."
    for name in ("tokens", "token_starts", "token_ends", "ner_tags"):
        row[name] = row[name][:12]
    row["entities"] = row["entities"][:3]
    lines = [f'  "{key}": {orjson.dumps(value).decode()}' for key, value in row.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def _field_tables(inputs: CardInputs) -> dict[str, str]:
    tables = {}
    for config, features in inputs.features.items():
        rows = [
            [f"`{name}`", describe_feature(feature), DESCRIPTIONS.get(name, "")] for name, feature in features.items()
        ]
        tables[config] = markdown_table(["field", "type", "description"], rows)
    return tables


def _counts_table(inputs: CardInputs) -> str:
    labels = inputs.labels
    scheme = inputs.scheme
    keys = [*(f"entity:{n}" for n in scheme.entity_names), *(f"mention_stance:{n}" for n in scheme.stance_names)]
    for target in scheme.target_ids:
        keys += [f"stance:{target}:{i}" for i in range(len(scheme.document_stance_names))]
    rows = []
    for key in keys:
        kind, *rest = key.split(":")
        if kind == "stance":
            name = f"stance `{rest[0]}` = {scheme.document_stance_names[int(rest[1])]}"
        else:
            name = f"{'entity' if kind == 'entity' else 'mention stance'} {rest[0]}"
        counts = [labels.get(split, {}).get(key, 0) for split in SPLITS]
        rows.append([name, *counts, sum(counts)])
    return markdown_table(["label", *SPLITS, "total"], rows)


def _sources_table(inputs: CardInputs) -> tuple[str, int, str, str]:
    """One row per outlet (name and domain merged, see `stats.py`), from the streaming statistics."""
    outlets = inputs.stats.get("outlets") or []
    rows = [
        [
            o["outlet"],
            ", ".join(f"`{d}`" for d in o["domains"]) or "-",
            o["articles"],
            o["gold"],
            o["first"] or "-",
            o["last"] or "-",
        ]
        for o in outlets
    ]
    return (
        markdown_table(["outlet", "domain", "articles", "gold-annotated", "first published", "last published"], rows),
        len(outlets),
        inputs.stats.get("first_date") or "unknown",
        inputs.stats.get("last_date") or "unknown",
    )


def _id_table(names: Sequence[str], descriptions: Mapping[str, str] | None = None, none: str | None = None) -> str:
    """Label-id table: the integer stored in the parquet files next to the name it stands for."""
    rows: list[list[Any]] = [[-1, "(none)", none]] if none else []
    rows += [[i, f"`{n}`", (descriptions or {}).get(n, "")] for i, n in enumerate(names)]
    return markdown_table(["id", "label", "meaning"], rows)


def _flatten_numbers(data: Any, prefix: str = "") -> list[list[Any]]:
    """Rows (path, value) of every number in nested data; a `{"value": ...}` dict is one figure."""
    if isinstance(data, bool):
        return []
    if isinstance(data, int | float):
        return [[prefix or "value", round(data, 4) if isinstance(data, float) else data]]
    rows: list[list[Any]] = []
    if isinstance(data, Mapping):
        if "value" in data and not isinstance(data["value"], Mapping):
            value = data["value"]
            return [[prefix, "undefined" if value is None else round(value, 4) if isinstance(value, float) else value]]
        for key, value in data.items():
            rows += _flatten_numbers(value, f"{prefix} / {key}" if prefix else str(key))
    return rows


def _agreement(inputs: CardInputs) -> tuple[str | None, int | None]:
    """Agreement figures of `newsstance agree` (figures are `{"value": ...}` dicts; counts shown apart)."""
    data = inputs.agreement
    if not isinstance(data, Mapping):
        return None, None
    raw_counts = data.get("counts")
    counts: Mapping[str, Any] = raw_counts if isinstance(raw_counts, Mapping) else {}
    n_annotators = counts.get("annotators")
    figures = {k: v for k, v in data.items() if k not in {"counts", "scheme_version"}}
    rows = _flatten_numbers(figures)
    if not rows:
        return None, n_annotators
    table = markdown_table(["measure", "value"], rows)
    if counts:
        table += "\n\nCounts: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()) + "."
    return table, n_annotators


def _benchmark(results: Any) -> str | None:
    """The leaderboard of `newsstance leaderboard` (its own Markdown), or any list of flat result rows."""
    if isinstance(results, Mapping) and isinstance(results.get("models"), list):
        try:
            from newsstance.evaluate.leaderboard import leaderboard_markdown

            return leaderboard_markdown(results).strip()
        except (ImportError, KeyError, TypeError, AttributeError):
            pass
    if isinstance(results, Mapping):
        results = results.get("results") or results.get("rows")
    if not isinstance(results, list) or not results or not all(isinstance(r, Mapping) for r in results):
        return None
    header: list[str] = []
    for row in results:
        header += [k for k in row if k not in header and not isinstance(row[k], Mapping | list)]
    return markdown_table(header, [[_fmt(row.get(k, "")) for k in header] for row in results])


def _fmt(value: Any) -> Any:
    return f"{value:.4f}" if isinstance(value, float) else value


def _history(inputs: CardInputs) -> str:
    rows = []
    for entry in reversed(inputs.history):
        gold_rows = entry.get("rows", {}).get(DEFAULT, {})
        reasons = entry.get("reasons") or []
        rows.append(
            [
                entry["version"],
                entry["date"],
                entry.get("bump") or "-",
                "; ".join(reasons[:4]) + (f"; +{len(reasons) - 4} more" if len(reasons) > 4 else "") or "-",
                f"+{entry['articles_added']} / -{entry['articles_removed']} / ~{entry['articles_changed']}",
                f"+{entry['annotations_added']} / -{entry['annotations_removed']} / ~{entry['annotations_changed']}",
                " / ".join(str(gold_rows.get(s, 0)) for s in SPLITS),
            ]
        )
    return markdown_table(
        [
            "version",
            "date",
            "bump",
            "why",
            "articles (added / removed / changed)",
            "annotations (added / removed / changed)",
            "gold rows (train / validation / test)",
        ],
        rows,
    )


def _diff_details(inputs: CardInputs) -> str:
    diff = inputs.diff
    if diff.get("first_release"):
        return f"Version {inputs.version} is the first release."
    lines = [
        f"Changes in {inputs.version} since {diff['previous_version']}: "
        f"{len(diff['articles_added'])} article(s) added, {len(diff['articles_removed'])} removed, "
        f"{len(diff['articles_changed'])} changed; {len(diff['annotations_added'])} annotation(s) added, "
        f"{len(diff['annotations_removed'])} removed, {len(diff['annotations_changed'])} changed; "
        f"{len(diff['split_moves'])} article(s) moved between splits. Ids are listed in `diff.json`.",
        "",
    ]
    before, after = diff["labels_before"], diff["labels_after"]
    keys = sorted({k for counts in (*before.values(), *after.values()) for k in counts})
    rows = []
    for key in keys:
        cells = [f"{before.get(s, {}).get(key, 0)} → {after.get(s, {}).get(key, 0)}" for s in SPLITS]
        if any(before.get(s, {}).get(key, 0) != after.get(s, {}).get(key, 0) for s in SPLITS):
            rows.append([_label_name(key, inputs.scheme), *cells])
    if rows:
        lines += ["Label counts per split that changed (before → after):", "", markdown_table(["label", *SPLITS], rows)]
    return "\n".join(lines)


def _label_name(key: str, scheme: Scheme) -> str:
    kind, *rest = key.split(":")
    if kind == "stance":
        return f"stance `{rest[0]}` = {scheme.document_stance_names[int(rest[1])]}"
    return f"{kind.replace('_', ' ')} {rest[0]}"


def _annotation_tool() -> str:
    """Label Studio with the version of the server the project runs, when its virtualenv is here."""
    pattern = str(state_dir() / "ls-venv" / "lib" / "python*" / "site-packages" / "label_studio-*.dist-info")
    found = sorted(glob.glob(pattern))
    return f"Label Studio {Path(found[-1]).name.split('-')[1].removesuffix('.dist')}" if found else "Label Studio"


def _citation(inputs: CardInputs) -> str:
    if inputs.project.citation:
        return inputs.project.citation.strip()
    key = f"newsstance_{inputs.version.replace('.', '_')}"
    return "\n".join(
        [
            f"@misc{{{key},",
            f"  title        = {{{{{inputs.pretty_name}}}: an English news corpus annotated for entities and stance}},",
            f"  author       = {{{{{inputs.project.authors}}}}},",
            f"  year         = {{{inputs.release_date[:4]}}},",
            f"  version      = {{{inputs.version}}},",
            *([f"  url          = {{{inputs.project.homepage}}},"] if inputs.project.homepage else []),
            f"  note         = {{Hugging Face dataset, revision v{inputs.version}}}",
            "}",
        ]
    )


def card_context(inputs: CardInputs, yaml_text: str) -> dict[str, Any]:
    """Variables of `dataset_card.md`."""
    scheme = inputs.scheme
    sources_table, n_outlets, date_from, date_to = _sources_table(inputs)
    agreement_table, n_annotators = _agreement(inputs)
    labels = inputs.labels
    guidelines = inputs.root / "annotations" / "guidelines.md"
    split_rows = [
        [config, *(inputs.rows[config].get(s, 0) for s in SPLITS), sum(inputs.rows[config].values())]
        for config in inputs.rows
    ]
    return {
        "card_data": yaml_text.strip(),
        "pretty_name": inputs.pretty_name,
        "version": inputs.version,
        "release_date": inputs.release_date,
        "targets": list(scheme.stance_targets),
        "entity_names": scheme.entity_names,
        "not_about": scheme.not_about_label,
        "n_annotated": sum(inputs.rows[DEFAULT].values()),
        "n_articles": sum(inputs.rows[ARTICLES].values()),
        "n_mentions": sum(v for counts in labels.values() for k, v in counts.items() if k.startswith("entity:")),
        "n_outlets": n_outlets,
        "date_from": date_from,
        "date_to": date_to,
        "silver": inputs.silver_model is not None,
        "silver_model": inputs.silver_model,
        "languages": inputs.languages(),
        "license": inputs.license_id,
        "license_name": inputs.license_name,
        "license_link": inputs.license_link,
        "license_note": ""
        if inputs.license_id != "unknown"
        else "No licence was chosen for this build (`unknown`): "
        "treat the release as all rights reserved until one is set.",
        "homepage": inputs.project.homepage,
        "repository": inputs.project.repository,
        "authors": inputs.project.authors,
        "figures": [{"path": f, "title": FIGURE_TITLES.get(Path(f).stem, Path(f).stem)} for f in inputs.figures],
        "kept": dict(inputs.kept),
        "bump": inputs.diff.get("bump"),
        "reasons": list(inputs.diff.get("reasons", [])),
        "scheme_version": scheme.scheme_version,
        "schema_version": validator("article.schema.json").schema.get("x-schema-version", "?"),
        "tool_version": inputs.tool_version,
        "git_commit": inputs.git_commit,
        "configs_table": markdown_table(
            ["config", "purpose", "files"],
            [
                [f"`{c}`", CONFIG_PURPOSE.get(c, ""), ", ".join(f"`{f}`" for fs in files.values() for f in fs)]
                for c, files in inputs.data_files.items()
            ],
        ),
        "example": _example(inputs),
        "field_tables": _field_tables(inputs),
        "token_pattern": TOKEN_PATTERN,
        "entity_table": _id_table(scheme.entity_names, {e.name: e.description for e in scheme.entity_labels}),
        "bio_table": _id_table(scheme.bio_tags),
        "stance_table": _id_table(
            scheme.stance_names, {s.name: s.description for s in scheme.stance_labels}, none="no stance given"
        ),
        "document_stance_table": _id_table(
            scheme.document_stance_names,
            {scheme.not_about_label: "the article is not about this target"},
            none="not labelled (`silver` only)",
        ),
        "target_table": markdown_table(
            ["id", "name", "question"], [[f"`{t.id}`", t.name, t.question] for t in scheme.stance_targets]
        ),
        "counts_table": _counts_table(inputs),
        "splits_table": markdown_table(["config", *SPLITS, "total"], split_rows),
        "ratios": " / ".join(f"{s} {r:g}" for s, r in zip(SPLITS, inputs.ratios, strict=True)),
        "sources_table": sources_table,
        "annotation_tool": _annotation_tool(),
        "guidelines": "`annotations/guidelines.md` in the project repository"
        if guidelines.is_file()
        else "the label descriptions below and the hints in the labelling configuration (`annotations/label_config.xml`)",
        "methods_table": markdown_table(
            ["method", "gold articles", "meaning"],
            [[f"`{m}`", n, METHOD_MEANINGS.get(m, "")] for m, n in sorted(inputs.gold_methods.items())],
        ),
        "agreement_table": agreement_table,
        "n_annotators": n_annotators,
        "benchmark_table": _benchmark(inputs.results),
        "history_table": _history(inputs),
        "diff_details": _diff_details(inputs),
        "citation": _citation(inputs),
    }
