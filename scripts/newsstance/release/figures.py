"""PNG figures of a release, embedded in its card (matplotlib, Agg backend: no display needed).

Drawn from numbers the build already has (label counts per split of the `default` config, the
streaming statistics of `articles`, the agreement file), so they cost no extra pass over the data.
Files go to `figures/<name>.png` in the release; `render_all` returns the paths it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from newsstance.release.features import SPLITS
from newsstance.scheme import Scheme

FOLDER = "figures"
COLOURS = {"train": "#4C72B0", "validation": "#DD8452", "test": "#55A868"}
MAX_BARS = 25
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, release_dir: Path, name: str) -> str:
    path = release_dir / FOLDER / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return f"{FOLDER}/{name}.png"


def _grouped_bars(ax: Any, categories: Sequence[str], per_split: Mapping[str, Sequence[int]]) -> None:
    width = 0.8 / max(1, len(per_split))
    for index, (split, values) in enumerate(per_split.items()):
        positions = [i + (index - (len(per_split) - 1) / 2) * width for i in range(len(categories))]
        ax.bar(positions, values, width, label=split, color=COLOURS.get(split))
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=30 if max(map(len, categories), default=0) > 6 else 0, ha="right")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def label_counts(release_dir: Path, labels: Mapping[str, Mapping[str, int]], scheme: Scheme) -> list[str]:
    """Entity types, mention stance and document stance per target, each per split."""
    plt = _pyplot()
    written = []
    splits = [s for s in SPLITS if s in labels]
    for name, prefix, names, title in (
        ("entity-types", "entity", scheme.entity_names, "Entity mentions per type"),
        ("mention-stance", "mention_stance", scheme.stance_names, "Stance towards entity mentions"),
    ):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        _grouped_bars(ax, names, {s: [labels[s].get(f"{prefix}:{n}", 0) for n in names] for s in splits})
        ax.set_title(title)
        ax.set_ylabel("count")
        written.append(_save(fig, release_dir, name))
    targets = scheme.target_ids
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(3.6 * max(1, len(targets)), 3.2), squeeze=False)
    doc_names = scheme.document_stance_names
    for ax, target in zip(axes[0], targets, strict=False):
        _grouped_bars(
            ax,
            doc_names,
            {s: [labels[s].get(f"stance:{target}:{i}", 0) for i in range(len(doc_names))] for s in splits},
        )
        ax.set_title(f"stance: {target}")
    axes[0][0].set_ylabel("articles")
    written.append(_save(fig, release_dir, "document-stance"))
    return written


def outlets_and_months(release_dir: Path, stats: Mapping[str, Any]) -> list[str]:
    plt = _pyplot()
    written = []
    outlets = list(stats.get("outlets") or [])[:MAX_BARS]
    if outlets:
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(outlets) + 1.2))
        names = [o["outlet"] for o in outlets][::-1]
        ax.barh(names, [o["articles"] - o["gold"] for o in outlets][::-1], color="#8C8C8C", label="not annotated")
        ax.barh(
            names,
            [o["gold"] for o in outlets][::-1],
            left=[o["articles"] - o["gold"] for o in outlets][::-1],
            color="#4C72B0",
            label="gold-annotated",
        )
        ax.set_xlabel("articles")
        ax.set_title("Articles per outlet" + (f" (top {MAX_BARS})" if len(stats["outlets"]) > MAX_BARS else ""))
        ax.legend(frameon=False, loc="lower right")
        ax.spines[["top", "right"]].set_visible(False)
        written.append(_save(fig, release_dir, "articles-per-outlet"))
    months = stats.get("months") or {}
    if months:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(list(months), list(months.values()), color="#4C72B0")
        ax.set_ylabel("articles")
        ax.set_title("Articles per publication month")
        if len(months) > 12:
            step = max(1, len(months) // 12)
            ax.set_xticks(list(months)[::step])
        ax.tick_params(axis="x", rotation=45)
        ax.spines[["top", "right"]].set_visible(False)
        written.append(_save(fig, release_dir, "articles-per-month"))
    return written


def _agreement_values(data: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(label, value) of every `{"value": x}` figure in `newsstance agree`'s output."""
    found: list[tuple[str, float]] = []
    if isinstance(data, Mapping):
        if isinstance(data.get("value"), int | float) and not isinstance(data.get("value"), bool):
            return [(prefix, float(data["value"]))]
        for key, value in data.items():
            if key in ("counts", "scheme_version"):
                continue
            found += _agreement_values(value, f"{prefix} / {key}" if prefix else str(key))
    return found


def agreement(release_dir: Path, data: Any) -> list[str]:
    values = _agreement_values(data)[:MAX_BARS]
    if not values:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(values) + 1.2))
    ax.barh([name for name, _ in values][::-1], [v for _, v in values][::-1], color="#55A868")
    ax.set_xlim(min(0.0, min(v for _, v in values)), 1.0)
    ax.set_xlabel("agreement")
    ax.set_title("Inter-annotator agreement per label")
    ax.spines[["top", "right"]].set_visible(False)
    return [_save(fig, release_dir, "agreement")]


def render_all(
    release_dir: Path,
    labels: Mapping[str, Mapping[str, int]],
    stats: Mapping[str, Any],
    agreement_data: Any,
    scheme: Scheme,
) -> list[str]:
    """Every figure of the card; paths relative to the release folder."""
    return [
        *label_counts(release_dir, labels, scheme),
        *outlets_and_months(release_dir, stats),
        *agreement(release_dir, agreement_data),
    ]
