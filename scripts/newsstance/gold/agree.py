"""Inter-annotator agreement on pulled annotation records (`newsstance agree`).

Label Studio Community Edition computes no agreement, so we do it from
`annotations/annotations.jsonl`: Krippendorff's alpha (nominal) and pairwise Cohen's
kappa per stance target, pairwise strict/partial span F1 per entity label, and
mention-stance agreement on spans two annotators marked identically. Every figure
carries its counts, and a figure that cannot be computed says why (`undefined_reason`)
instead of being NaN: a kappa of NaN in a table reads like a bug, "one annotator only"
reads like a fact.
"""

from __future__ import annotations

import sys
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.metrics import cohen_kappa_score

from newsstance.errors import UserError
from newsstance.records import Record, Validator, loads, write_json
from newsstance.scheme import Scheme

SpanKey = tuple[int, int, str]  # (start, end, label)


# --- reading -------------------------------------------------------------------------


def read_annotations(path: Path, scheme: Scheme) -> list[Record]:
    """Annotation records of `path`, each validated against the scheme; refuses duplicates.

    Validation against the scheme object (not the file) keeps a test scheme with extra
    labels usable; `newsstance scheme check` keeps the two in sync for real runs.
    """
    if not path.is_file():
        raise UserError(f"annotations file not found: {path} (run `newsstance studio pull` first)")
    check = Validator(scheme.annotation_schema())
    records: list[Record] = []
    seen: dict[int, int] = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = loads(line)
            except ValueError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc})") from None
            errors = check.errors(record)
            if errors:
                more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
                raise UserError(f"{path}:{number}: not a valid annotation record: {errors[0]}{more}")
            annotation_id = record["annotation_id"]
            if annotation_id in seen:
                raise UserError(f"{path}:{number}: annotation {annotation_id} already on line {seen[annotation_id]}")
            seen[annotation_id] = number
            records.append(record)
    return records


def recency_key(record: Record) -> tuple[str, int]:
    """Order of an annotator's annotations of one article: the last one counts."""
    return (record.get("updated_at") or record.get("created_at") or "", record["annotation_id"])


def latest_per_annotator(records: Iterable[Record]) -> dict[str, dict[str, Record]]:
    """article_id -> annotator -> their latest non-cancelled annotation.

    One vote per person: a second annotation by the same annotator replaces the first
    rather than counting as a second opinion.
    """
    by_article: dict[str, dict[str, Record]] = defaultdict(dict)
    for record in records:
        if record["cancelled"]:
            continue
        current = by_article[record["article_id"]].get(record["annotator"])
        if current is None or recency_key(record) > recency_key(current):
            by_article[record["article_id"]][record["annotator"]] = record
    return dict(by_article)


def span_stances(record: Record) -> dict[SpanKey, str | None]:
    """(start, end, label) -> mention stance; a span marked twice keeps its first given stance."""
    spans: dict[SpanKey, str | None] = {}
    for entity in record["entities"]:
        key = (entity["start"], entity["end"], entity["label"])
        if spans.get(key) is None:
            spans[key] = entity.get("stance")
    return spans


# --- figures -------------------------------------------------------------------------


def figure(value: float | None, reason: str | None = None, **counts: Any) -> dict[str, Any]:
    """A reported number with its counts; `value` is None exactly when `undefined_reason` says why."""
    if value is not None and not np.isfinite(value):
        value, reason = None, reason or "not a finite number"
    return {
        "value": None if value is None else float(value),
        "undefined_reason": None if value is not None else reason,
        **counts,
    }


def cohen_kappa(items: Sequence[tuple[str, str]], labels: Sequence[str]) -> dict[str, Any]:
    """Cohen's kappa of paired labels, with observed agreement; undefined without pairs or variance."""
    if not items:
        return figure(None, "no item labelled by both annotators", items=0, observed_agreement=None)
    first, second = [a for a, _ in items], [b for _, b in items]
    observed = sum(a == b for a, b in items) / len(items)
    used = set(first) | set(second)
    if len(used) == 1:
        return figure(
            None, f"no variance: every answer is {next(iter(used))!r}", items=len(items), observed_agreement=observed
        )
    kappa = cohen_kappa_score(first, second, labels=list(labels))
    return figure(kappa, items=len(items), observed_agreement=observed)


def krippendorff_alpha(
    units: dict[Any, dict[str, str]], labels: Sequence[str], nothing: str = "no answers"
) -> dict[str, Any]:
    """Nominal alpha over units (unit -> annotator -> label); missing answers are allowed."""
    annotators = sorted({name for answers in units.values() for name in answers})
    pairable = {unit: answers for unit, answers in units.items() if len(answers) >= 2}
    values = [label for answers in pairable.values() for label in answers.values()]
    counts: dict[str, Any] = {"annotators": len(annotators), "units": len(pairable), "items": len(values)}
    if len(annotators) < 2:
        return figure(None, "one annotator only" if annotators else nothing, **counts)
    if not pairable:
        return figure(None, "no unit labelled by two annotators", **counts)
    if len(set(values)) == 1:
        return figure(None, f"no variance: every answer is {values[0]!r}", **counts)
    index = {label: i for i, label in enumerate(labels)}
    row = {name: i for i, name in enumerate(annotators)}
    data = np.full((len(annotators), len(pairable)), np.nan)
    for column, answers in enumerate(pairable.values()):
        for name, label in answers.items():
            data[row[name], column] = index[label]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha = krippendorff.alpha(
            reliability_data=data, value_domain=list(range(len(labels))), level_of_measurement="nominal"
        )
    return figure(alpha, **counts)


def f1_figure(matches: int, spans_a: int, spans_b: int, label: str) -> dict[str, Any]:
    """Span F1 = 2·matches / (spans of A + spans of B): symmetric, so the pair's order does not matter."""
    counts: dict[str, Any] = {"matches": matches, "spans_a": spans_a, "spans_b": spans_b}
    if spans_a + spans_b == 0:
        return figure(None, f"no {label} span from either annotator", **counts)
    return figure(2 * matches / (spans_a + spans_b), **counts)


def overlaps(a: SpanKey, b: SpanKey) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def partial_matches(spans_a: Sequence[SpanKey], spans_b: Sequence[SpanKey]) -> int:
    """Largest one-to-one matching of overlapping same-label spans (Kuhn's augmenting paths).

    One-to-one keeps F1 within [0, 1] (one long span cannot match three short ones) and a
    maximum matching keeps partial F1 >= strict F1.
    """
    candidates = [[j for j, b in enumerate(spans_b) if a[2] == b[2] and overlaps(a, b)] for a in spans_a]
    owner: dict[int, int] = {}

    def augment(i: int, visited: set[int]) -> bool:
        for j in candidates[i]:
            if j in visited:
                continue
            visited.add(j)
            if j not in owner or augment(owner[j], visited):
                owner[j] = i
                return True
        return False

    return sum(augment(i, set()) for i in range(len(spans_a)))


# --- agreement per layer ---------------------------------------------------------------


def annotator_pairs(by_article: dict[str, dict[str, Record]]) -> list[tuple[str, str]]:
    """Pairs of annotators who both annotated at least one article."""
    pairs: set[tuple[str, str]] = set()
    for per_annotator in by_article.values():
        pairs.update(combinations(sorted(per_annotator), 2))
    return sorted(pairs)


def shared_articles(by_article: dict[str, dict[str, Record]], a: str, b: str) -> list[str]:
    return sorted(article for article, named in by_article.items() if a in named and b in named)


def document_stance_agreement(by_article: dict[str, dict[str, Record]], scheme: Scheme) -> dict[str, Any]:
    """Per target: alpha over all annotators and Cohen's kappa per pair (and their mean)."""
    labels = scheme.document_stance_names
    result: dict[str, Any] = {}
    for target in scheme.target_ids:
        units = {
            article: {name: rec["stances"][target] for name, rec in named.items() if target in rec["stances"]}
            for article, named in by_article.items()
        }
        alpha = krippendorff_alpha(units, labels)
        alpha["articles"] = alpha.pop("units")
        pairs = []
        for a, b in annotator_pairs(by_article):
            items = [
                (units[art][a], units[art][b])
                for art in shared_articles(by_article, a, b)
                if a in units[art] and b in units[art]
            ]
            pairs.append({"annotators": [a, b], **cohen_kappa(items, labels)})
        defined = [p["value"] for p in pairs if p["value"] is not None]
        mean = figure(
            sum(defined) / len(defined) if defined else None,
            "no pair with a defined kappa" if pairs else "no pair of annotators",
            pairs=len(defined),
            pairs_total=len(pairs),
        )
        result[target] = {"alpha": alpha, "mean_kappa": mean, "pairs": pairs}
    return result


def entity_agreement(by_article: dict[str, dict[str, Record]], scheme: Scheme) -> dict[str, Any]:
    """Strict (same span, same label) and partial (overlap, same label) span F1, per pair and pooled."""
    labels = scheme.entity_names
    pooled = {label: {"strict": 0, "partial": 0, "a": 0, "b": 0} for label in labels}
    pairs_out = []
    for a, b in annotator_pairs(by_article):
        articles = shared_articles(by_article, a, b)
        counts = {label: {"strict": 0, "partial": 0, "a": 0, "b": 0} for label in labels}
        for article in articles:
            spans_a = sorted(span_stances(by_article[article][a]))
            spans_b = sorted(span_stances(by_article[article][b]))
            for label in labels:
                la = [s for s in spans_a if s[2] == label]
                lb = [s for s in spans_b if s[2] == label]
                counts[label]["strict"] += len(set(la) & set(lb))
                counts[label]["partial"] += partial_matches(la, lb)
                counts[label]["a"] += len(la)
                counts[label]["b"] += len(lb)
        for label in labels:
            for key in pooled[label]:
                pooled[label][key] += counts[label][key]
        pairs_out.append({"annotators": [a, b], "articles": len(articles), **span_f1_table(counts)})
    articles_total = sum(len(per_annotator) >= 2 for per_annotator in by_article.values())
    return {
        "pooled": {"pairs": len(pairs_out), "articles": articles_total, **span_f1_table(pooled)},
        "pairs": pairs_out,
    }


def span_f1_table(counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per-label and micro-averaged strict/partial F1 from match counts."""
    per_label = {
        label: {
            "strict_f1": f1_figure(c["strict"], c["a"], c["b"], label),
            "partial_f1": f1_figure(c["partial"], c["a"], c["b"], label),
        }
        for label, c in counts.items()
    }
    total = {key: sum(c[key] for c in counts.values()) for key in ("strict", "partial", "a", "b")}
    overall = {
        "strict_f1": f1_figure(total["strict"], total["a"], total["b"], "entity"),
        "partial_f1": f1_figure(total["partial"], total["a"], total["b"], "entity"),
    }
    return {"labels": per_label, "overall": overall}


def mention_stance_agreement(by_article: dict[str, dict[str, Record]], scheme: Scheme) -> dict[str, Any]:
    """Agreement on the stance of spans two annotators marked identically (same start, end, label).

    Spans where either annotator gave no stance are counted (`without_stance`) but not scored.
    """
    labels = scheme.stance_names
    units: dict[tuple[str, SpanKey], dict[str, str]] = defaultdict(dict)
    for article, per_annotator in by_article.items():
        for name, record in per_annotator.items():
            for span, stance in span_stances(record).items():
                if stance is not None:
                    units[(article, span)][name] = stance
    pooled_items: list[tuple[str, str]] = []
    pairs_out = []
    for a, b in annotator_pairs(by_article):
        items: list[tuple[str, str]] = []
        without = 0
        for article in shared_articles(by_article, a, b):
            spans_a, spans_b = span_stances(by_article[article][a]), span_stances(by_article[article][b])
            for span in sorted(set(spans_a) & set(spans_b)):
                stance_a, stance_b = spans_a[span], spans_b[span]
                if stance_a is None or stance_b is None:
                    without += 1
                else:
                    items.append((stance_a, stance_b))
        pooled_items += items
        pairs_out.append(
            {
                "annotators": [a, b],
                "without_stance": without,
                "accuracy": accuracy(items),
                "kappa": cohen_kappa(items, labels),
            }
        )
    return {
        "pooled": {
            "pairs": len(pairs_out),
            "without_stance": sum(p["without_stance"] for p in pairs_out),
            "accuracy": accuracy(pooled_items),
            "kappa": cohen_kappa(pooled_items, labels),
            "alpha": krippendorff_alpha(dict(units), labels, "no span with a mention stance"),
        },
        "pairs": pairs_out,
    }


def accuracy(items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    if not items:
        return figure(None, "no identically marked span with a stance from both", items=0)
    return figure(sum(a == b for a, b in items) / len(items), items=len(items))


def compute_agreement(records: Iterable[Record], scheme: Scheme) -> dict[str, Any]:
    """The whole agreement report (JSON-ready) for annotation records."""
    records = list(records)
    by_article = latest_per_annotator(records)
    kept = sum(len(per_annotator) for per_annotator in by_article.values())
    cancelled = sum(record["cancelled"] for record in records)
    return {
        "scheme_version": scheme.scheme_version,
        "counts": {
            "annotations": len(records),
            "cancelled_skipped": cancelled,
            "superseded_skipped": len(records) - cancelled - kept,
            "annotations_used": kept,
            "articles": len(by_article),
            "articles_with_two_or_more_annotators": sum(len(a) >= 2 for a in by_article.values()),
            "annotators": len({name for per_annotator in by_article.values() for name in per_annotator}),
        },
        "document_stance": document_stance_agreement(by_article, scheme),
        "entities": entity_agreement(by_article, scheme),
        "mention_stance": mention_stance_agreement(by_article, scheme),
    }


# --- presentation --------------------------------------------------------------------


def show(fig: dict[str, Any]) -> str:
    return "undefined" if fig["value"] is None else f"{fig['value']:.3f}"


def notes(*figs: dict[str, Any]) -> str:
    reasons = [fig["undefined_reason"] for fig in figs if fig["undefined_reason"]]
    return "; ".join(dict.fromkeys(reasons))


def add_column(table: Table, name: str) -> None:
    """Figures never wrap; only the free-text note does."""
    if name == "note":
        table.add_column(name, overflow="fold")
    else:
        table.add_column(name, justify="left" if name in ("target", "label", "measure") else "right", no_wrap=True)


def report_tables(report: dict[str, Any]) -> list[Table]:
    """Rich tables: document stance per target, entity F1 per label, mention stance."""
    c = report["counts"]
    stance = Table(
        title=f"Document stance ({c['annotations_used']} annotations, {c['articles']} articles, "
        f"{c['annotators']} annotators; {c['cancelled_skipped']} cancelled skipped)"
    )
    for column in ("target", "alpha", "articles", "annotators", "items", "mean kappa", "pairs", "note"):
        add_column(stance, column)
    for target, fig in report["document_stance"].items():
        alpha, mean = fig["alpha"], fig["mean_kappa"]
        stance.add_row(
            target,
            show(alpha),
            str(alpha["articles"]),
            str(alpha["annotators"]),
            str(alpha["items"]),
            show(mean),
            f"{mean['pairs']}/{mean['pairs_total']}",
            notes(alpha, mean),
        )

    pooled = report["entities"]["pooled"]
    entities = Table(
        title=f"Entity span F1 (pooled over {pooled['pairs']} annotator pairs, {pooled['articles']} shared articles)"
    )
    for column in (
        "label",
        "strict F1",
        "partial F1",
        "strict matches",
        "partial matches",
        "spans A",
        "spans B",
        "note",
    ):
        add_column(entities, column)
    rows = [*pooled["labels"].items(), ("micro (all)", pooled["overall"])]
    for label, fig in rows:
        strict, partial = fig["strict_f1"], fig["partial_f1"]
        entities.add_row(
            label,
            show(strict),
            show(partial),
            str(strict["matches"]),
            str(partial["matches"]),
            str(strict["spans_a"]),
            str(strict["spans_b"]),
            notes(strict),
        )

    mention = report["mention_stance"]["pooled"]
    mentions = Table(title="Mention stance on identically marked spans")
    for column in ("measure", "value", "items", "note"):
        add_column(mentions, column)
    mentions.add_row(
        "accuracy (pooled pairs)",
        show(mention["accuracy"]),
        str(mention["accuracy"]["items"]),
        notes(mention["accuracy"]),
    )
    mentions.add_row(
        "Cohen's kappa (pooled pairs)", show(mention["kappa"]), str(mention["kappa"]["items"]), notes(mention["kappa"])
    )
    mentions.add_row(
        f"Krippendorff's alpha ({mention['alpha']['annotators']} annotators)",
        show(mention["alpha"]),
        str(mention["alpha"]["items"]),
        notes(mention["alpha"]),
    )
    mentions.caption = f"{mention['without_stance']} shared span(s) without a stance from one annotator not scored"
    return [stance, entities, mentions]


def run_agree(annotations_path: Path, out_path: Path, scheme: Scheme, console: Console | None = None) -> dict:
    """Read, compute, print and write the agreement report."""
    with Console(stderr=True).status(f"computing agreement on {annotations_path}"):
        report = compute_agreement(read_annotations(annotations_path, scheme), scheme)
        write_json(out_path, report)
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    for table in report_tables(report):
        console.print(table)
    console.print(f"wrote {out_path}")
    return report
