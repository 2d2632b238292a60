"""Gold annotations from pulled annotation records (`newsstance adjudicate`).

Per article: a ground-truth annotation wins; otherwise every item (entity span+label,
its mention stance, the document stance per target) is decided by the policy -
`unanimous` (every annotator agrees) or `majority` (more than half; a tie is unresolved).
Unresolved items are written to `annotations/conflicts.jsonl` (stage `adjudicate`, see
`newsstance.conflicts`) with the competing values, so nothing is dropped silently, and can be
pushed back to Label Studio as review tasks (`review_tasks`). Every pulled annotation id ends
up in a gold record's `annotation_ids` or in a conflict entry - `unaccounted_annotation_ids`
checks it.

A gold record's `method` says what happened, not which policy was asked for (METHODS):
`ground_truth`, `single` (one annotator), `unanimous` (every item agreed by all), `majority`
(every item decided, some by a true majority), `agreed_items_only` (some entity items were
unresolved - a tie, or two annotators who disagree - and the gold holds only the decided ones).
`adjudication.json` next to the gold counts each method for the dataset card.

Gold that `build` would refuse is never written: spans breaking the scheme's `span_overlap`
rule, and (when the corpus is here) gold for a missing article or for a text that has since
changed become conflicts instead.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from newsstance.conflicts import ADJUDICATE, ADJUDICATION_KIND, ConflictLine, read_lines, replace_conflicts, stage_of
from newsstance.errors import UserError
from newsstance.gold.agree import SpanKey, read_annotations, recency_key, span_stances
from newsstance.paths import ADJUDICATION_JSON
from newsstance.records import Record, Validator, corpus_hashes, write_json, write_jsonl
from newsstance.scheme import ENTITIES_NAME, MENTION_STANCE_NAME, TEXT_NAME, Scheme, overlap_violations

POLICIES = ("majority", "unanimous")
# Each gold method and what it means (the dataset card prints these next to the counts).
METHOD_MEANINGS = {
    "ground_truth": "an annotation marked as ground truth in Label Studio was taken as it is",
    "single": "only one annotator labelled the article",
    "unanimous": "every annotator agreed on every item",
    "majority": "every item was decided, some by a true majority of annotators",
    "agreed_items_only": "some entity items were unresolved (a tie, or two annotators who disagree) and are left out; "
    "the gold holds only the decided items",
    "manual": "written by hand (e.g. the sample corpus gold)",
}
METHODS = tuple(METHOD_MEANINGS)
KIND = ADJUDICATION_KIND
STAGE = ADJUDICATE

# Reason codes of adjudication entries. `gold_written` in each entry says whether the article still got
# gold: unresolved entity items and pull problems do not block it (the decided spans are kept), the rest do.
TEXT_CHANGED = "text_changed"
GROUND_TRUTH_DISAGREEMENT = "ground_truth_disagreement"
TOO_FEW_ANNOTATORS = "too_few_annotators"
UNRESOLVED_STANCE = "unresolved_stance"
UNRESOLVED_ENTITIES = "unresolved_entities"
PULL_CONFLICT = "pull_conflict"
CANCELLED = "cancelled"
OVERLAPPING_SPANS = "overlapping_spans"
ARTICLE_MISSING = "article_missing"


@dataclass(frozen=True)
class Decision:
    """Outcome of one vote: the winning value, or unresolved; `unanimous` when every vote agreed."""

    resolved: bool
    value: Any
    unanimous: bool


def decide(votes: Iterable[Hashable], policy: str) -> Decision:
    """Decide one item from its votes: unanimous needs all equal, majority more than half."""
    counts = Counter(votes)
    if not counts:
        return Decision(False, None, False)
    (top, top_count), total = counts.most_common(1)[0], sum(counts.values())
    if len(counts) == 1:
        return Decision(True, top, True)
    if policy == "majority" and top_count * 2 > total:
        return Decision(True, top, False)
    return Decision(False, None, False)


def vote_list(values: Mapping[int, Any], annotators: Mapping[int, str]) -> list[dict[str, Any]]:
    """Competing values, one per annotation, for a conflict entry."""
    return [{"annotation_id": aid, "annotator": annotators[aid], "value": values[aid]} for aid in sorted(values)]


def entity_record(span: SpanKey, text: str, stance: str | None) -> dict[str, Any]:
    return {"start": span[0], "end": span[1], "label": span[2], "text": text, "stance": stance}


def span_texts(records: Iterable[Record]) -> dict[SpanKey, str]:
    texts: dict[SpanKey, str] = {}
    for record in records:
        for entity in record["entities"]:
            texts.setdefault((entity["start"], entity["end"], entity["label"]), entity["text"])
    return texts


def content_of(record: Record) -> tuple[tuple[tuple[SpanKey, str | None], ...], tuple[tuple[str, str], ...]]:
    """What an annotation says (spans with stance, document stances), for comparing ground truths."""
    return tuple(sorted(span_stances(record).items(), key=lambda kv: kv[0])), tuple(sorted(record["stances"].items()))


def vote_on_items(voters: list[Record], scheme: Scheme, policy: str) -> dict[str, Any]:
    """Decide every item of one article among `voters` (one annotation per annotator).

    Returns decided `entities` and `stances`, the unresolved `items` (with competing values)
    and whether every decision was unanimous.
    """
    annotators = {rec["annotation_id"]: rec["annotator"] for rec in voters}
    marked = {rec["annotation_id"]: span_stances(rec) for rec in voters}
    texts = span_texts(voters)
    entities, items, all_unanimous = [], [], True
    for span in sorted(texts):
        votes = {aid: span in spans for aid, spans in marked.items()}
        kept = decide(votes.values(), policy)
        all_unanimous &= kept.unanimous
        if not kept.resolved:
            items.append(
                {
                    "item": "entity",
                    **entity_record(span, texts[span], None),
                    "marked_by": sorted(a for a, v in votes.items() if v),
                    "not_marked_by": sorted(a for a, v in votes.items() if not v),
                }
            )
            continue
        if not kept.value:
            continue
        stances = {aid: spans[span] for aid, spans in marked.items() if span in spans}
        stance = decide(stances.values(), policy)
        all_unanimous &= stance.unanimous
        if not stance.resolved:
            items.append(
                {
                    "item": "mention_stance",
                    **entity_record(span, texts[span], None),
                    "votes": vote_list(stances, annotators),
                }
            )
        entities.append(entity_record(span, texts[span], stance.value))
    stances_out = {}
    for target in scheme.target_ids:
        answers = {rec["annotation_id"]: rec["stances"][target] for rec in voters if target in rec["stances"]}
        decision = decide(answers.values(), policy)
        all_unanimous &= decision.unanimous and len(answers) == len(voters)
        if decision.resolved:
            stances_out[target] = decision.value
        else:
            items.append(
                {
                    "item": "stance",
                    "target": target,
                    "votes": vote_list(answers, annotators),
                    "unanswered_by": sorted(set(annotators) - set(answers)),
                }
            )
    return {"entities": entities, "stances": stances_out, "items": items, "unanimous": all_unanimous}


def annotation_content(record: Record) -> dict[str, Any]:
    """Entities and stances of one annotation in gold form (for ground truth and single annotations)."""
    entities = [
        entity_record(span, text, span_stances(record)[span]) for span, text in sorted(span_texts([record]).items())
    ]
    return {"entities": entities, "stances": dict(record["stances"])}


def conflict(
    article_id: str,
    reason: str,
    message: str,
    annotation_ids: Iterable[int],
    *,
    gold_written: bool,
    annotation_id: int | None = None,
    **detail: Any,
) -> Record:
    """One adjudication entry: `reason` is a code, `detail` holds a readable message and the competing values."""
    return {
        "kind": KIND,
        "stage": STAGE,
        "annotation_id": annotation_id,
        "annotation_ids": sorted(annotation_ids),
        "article_id": article_id,
        "reason": reason,
        "gold_written": gold_written,
        "detail": {"message": message, **detail},
    }


@dataclass(frozen=True)
class _Outcome:
    """What one article's annotations decided, before the checks that can still keep it from gold.

    `decided` holds the gold `entities` and `stances`; `items` the unresolved ones (with competing values).
    """

    decided: dict[str, Any]
    method: str
    items: list[dict[str, Any]]


def _cancelled_entries(article_id: str, cancelled: list[Record]) -> list[Record]:
    """One entry per cancelled annotation, so a skipped annotation is accounted for, not silently dropped."""
    return [
        conflict(
            article_id,
            CANCELLED,
            f"annotation {rec['annotation_id']} by {rec['annotator']} was cancelled "
            "(skipped) in Label Studio; not used for gold",
            [rec["annotation_id"]],
            gold_written=False,
            annotation_id=rec["annotation_id"],
        )
        for rec in cancelled
    ]


def _text_changed_between(article_id: str, active: list[Record], ids: list[int]) -> Record | None:
    """An entry when the annotations were made on different texts: their spans cannot be compared."""
    hashes = {rec["text_sha256"] for rec in active}
    if len(hashes) <= 1:
        return None
    by_hash = {h: sorted(r["annotation_id"] for r in active if r["text_sha256"] == h) for h in sorted(hashes)}
    return conflict(
        article_id,
        TEXT_CHANGED,
        f"annotations were made on {len(hashes)} different texts of this article",
        ids,
        gold_written=False,
        text_sha256=by_hash,
    )


def _ground_truth_outcome(
    article_id: str, ground_truths: list[Record], scheme: Scheme, ids: list[int]
) -> _Outcome | Record:
    """Ground truth is taken as it is; several that disagree are a conflict (no vote may override them)."""
    if len({content_of(rec) for rec in ground_truths}) > 1:
        outcome = vote_on_items(ground_truths, scheme, "unanimous")
        return conflict(
            article_id,
            GROUND_TRUTH_DISAGREEMENT,
            f"{len(ground_truths)} ground-truth annotations disagree on {len(outcome['items'])} item(s)",
            ids,
            gold_written=False,
            ground_truth_ids=sorted(r["annotation_id"] for r in ground_truths),
            items=outcome["items"],
            entities=outcome["entities"],
            stances=outcome["stances"],
            policy="unanimous",
        )
    return _Outcome(annotation_content(ground_truths[0]), "ground_truth", [])


def _voted_outcome(
    article_id: str,
    active: list[Record],
    scheme: Scheme,
    policy: str,
    min_annotators: int,
    ids: list[int],
) -> _Outcome | Record:
    """Decide by the annotators' latest annotations; `method` records what happened, not the policy asked."""
    voters = latest_by_annotator(active)
    if len(voters) < min_annotators:
        return conflict(
            article_id,
            TOO_FEW_ANNOTATORS,
            f"{len(voters)} annotator(s), at least {min_annotators} required",
            ids,
            gold_written=False,
            annotators=sorted({rec["annotator"] for rec in active}),
        )
    if len(voters) == 1:
        return _Outcome(annotation_content(voters[0]), "single", [])
    outcome = vote_on_items(voters, scheme, policy)
    items = outcome["items"]
    method = "agreed_items_only" if items else "unanimous" if outcome["unanimous"] else "majority"
    return _Outcome(outcome, method, items)


def _decisions(outcome: _Outcome, policy: str) -> dict[str, Any]:
    """The partial adjudication as conflict details, so a reviewer sees what was decided and what was not."""
    decided = outcome.decided
    return {"items": outcome.items, "entities": decided["entities"], "stances": decided["stances"], "policy": policy}


def _scheme_blocker(
    article_id: str, outcome: _Outcome, scheme: Scheme, ids: list[int], decisions: dict[str, Any]
) -> Record | None:
    """An entry when the decided content is gold `build` would refuse: a missing stance or overlapping spans."""
    decided, items = outcome.decided, outcome.items
    missing_targets = [t for t in scheme.target_ids if t not in decided["stances"]]
    if missing_targets:
        return conflict(
            article_id,
            UNRESOLVED_STANCE,
            f"document stance unresolved for {', '.join(missing_targets)}; {len(items)} unresolved item(s) in all",
            ids,
            gold_written=False,
            **decisions,
        )
    clashes = overlap_violations(decided["entities"], scheme.span_overlap)
    if clashes:
        return conflict(
            article_id,
            OVERLAPPING_SPANS,
            f"{len(clashes)} pair(s) of decided spans overlap against the scheme (span_overlap: "
            f"{scheme.span_overlap}); a reviewer must choose",
            ids,
            gold_written=False,
            spans=[[_span(a), _span(b)] for a, b in clashes],
            **decisions,
        )
    return None


def _corpus_blocker(article_id: str, text_sha: str, corpus: Mapping[str, str] | None, ids: list[int]) -> Record | None:
    """An entry when the corpus is here and the article is gone or its text changed: the spans would not match."""
    if corpus is None:
        return None
    current = corpus.get(article_id)
    if current is None:
        return conflict(
            article_id,
            ARTICLE_MISSING,
            "the article is not in the corpus any more (removed or renamed by normalisation)",
            ids,
            gold_written=False,
        )
    if current != text_sha:
        return conflict(
            article_id,
            TEXT_CHANGED,
            "the article's text changed in the corpus since it was annotated; run "
            "`newsstance studio push --update` to carry the annotations over",
            ids,
            gold_written=False,
            text_sha256={"annotated": text_sha, "corpus": current},
        )
    return None


def _gold_record(article_id: str, text_sha: str, outcome: _Outcome, scheme: Scheme, ids: list[int]) -> Record:
    """The gold record; stances in the scheme's target order so the output does not depend on vote order."""
    decided = outcome.decided
    return {
        "article_id": article_id,
        "text_sha256": text_sha,
        "entities": decided["entities"],
        "stances": {t: decided["stances"][t] for t in scheme.target_ids},
        "annotation_ids": sorted(ids),
        "method": outcome.method,
        "scheme_version": scheme.scheme_version,
    }


def _gold_caveats(
    article_id: str,
    items: list[dict[str, Any]],
    decisions: dict[str, Any],
    ids: list[int],
    pull_conflicts: list[Record],
) -> list[Record]:
    """Entries for written gold that may lack something (unresolved entities, pull problems), so it is not lost."""
    entries: list[Record] = []
    if items:
        entries.append(
            conflict(
                article_id,
                UNRESOLVED_ENTITIES,
                f"{len(items)} entity item(s) unresolved; gold holds only the decided spans",
                ids,
                gold_written=True,
                **decisions,
            )
        )
    if pull_conflicts:
        kinds = ", ".join(sorted({str(c.get("kind")) for c in pull_conflicts}))
        entries.append(
            conflict(
                article_id,
                PULL_CONFLICT,
                f"{len(pull_conflicts)} problem(s) of this article's annotations could not be "
                f"reconciled on pull ({kinds}); gold may lack what they concern",
                ids,
                gold_written=True,
                pull_annotation_ids=sorted(
                    {c["annotation_id"] for c in pull_conflicts if isinstance(c.get("annotation_id"), int)}
                ),
                pull_reasons=sorted({str(c.get("reason")) for c in pull_conflicts}),
            )
        )
    return entries


def adjudicate_article(
    article_id: str,
    records: list[Record],
    scheme: Scheme,
    policy: str,
    min_annotators: int,
    pull_conflicts: list[Record],
    corpus: Mapping[str, str] | None = None,
) -> tuple[Record | None, list[Record]]:
    """Gold record (or None) and conflict entries for one article's annotations.

    Phases: cancelled annotations, text consistency, deciding (ground truth or vote), the checks
    that keep unbuildable gold out, then the gold record and the caveats written alongside it.
    """
    active = [rec for rec in records if not rec["cancelled"]]
    entries = _cancelled_entries(article_id, [rec for rec in records if rec["cancelled"]])
    if not active:
        return None, entries
    ids = [rec["annotation_id"] for rec in active]
    text_changed = _text_changed_between(article_id, active, ids)
    if text_changed is not None:
        return None, [*entries, text_changed]
    ground_truths = [rec for rec in active if rec["ground_truth"]]
    if ground_truths:
        outcome = _ground_truth_outcome(article_id, ground_truths, scheme, ids)
    else:
        outcome = _voted_outcome(article_id, active, scheme, policy, min_annotators, ids)
    if not isinstance(outcome, _Outcome):
        return None, [*entries, outcome]
    decisions = _decisions(outcome, policy)
    text_sha = active[0]["text_sha256"]
    blocker = _scheme_blocker(article_id, outcome, scheme, ids, decisions)
    if blocker is None:
        blocker = _corpus_blocker(article_id, text_sha, corpus, ids)
    if blocker is not None:
        return None, [*entries, blocker]
    gold = _gold_record(article_id, text_sha, outcome, scheme, ids)
    return gold, [*entries, *_gold_caveats(article_id, outcome.items, decisions, ids, pull_conflicts)]


def _span(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entity.get(key) for key in ("start", "end", "label", "text")}


def latest_by_annotator(records: list[Record]) -> list[Record]:
    """One voter per annotator: their latest annotation (the others are superseded, not extra votes)."""
    latest: dict[str, Record] = {}
    for record in records:
        current = latest.get(record["annotator"])
        if current is None or recency_key(record) > recency_key(current):
            latest[record["annotator"]] = record
    return sorted(latest.values(), key=lambda rec: rec["annotation_id"])


def adjudicate(
    annotations: Iterable[Record],
    scheme: Scheme,
    policy: str = "majority",
    min_annotators: int = 1,
    pull_conflicts: Iterable[Record] = (),
    corpus: Mapping[str, str] | None = None,
) -> tuple[list[Record], list[Record]]:
    """Gold records (validated) and adjudication conflict entries, both sorted by article id.

    `corpus` (article id -> current text_sha256), when given, keeps gold off missing or changed texts."""
    check_options(policy, min_annotators)
    by_article: dict[str, list[Record]] = defaultdict(list)
    for record in annotations:
        by_article[record["article_id"]].append(record)
    pulled_by_article: dict[str, list[Record]] = defaultdict(list)
    for entry in pull_conflicts:
        if stage_of(entry) != STAGE and entry.get("article_id") in by_article:
            pulled_by_article[entry["article_id"]].append(entry)
    check = Validator(scheme.gold_schema())
    gold: list[Record] = []
    entries: list[Record] = []
    for article_id in sorted(by_article):
        records = sorted(by_article[article_id], key=lambda rec: rec["annotation_id"])
        gold_record, article_entries = adjudicate_article(
            article_id, records, scheme, policy, min_annotators, pulled_by_article.get(article_id, []), corpus
        )
        if gold_record is not None:
            errors = check.errors(gold_record)
            if errors:
                raise UserError(f"gold record for article {article_id} is not valid: {errors[0]}")
            gold.append(gold_record)
        entries += article_entries
    return gold, entries


def check_options(policy: str, min_annotators: int) -> None:
    if policy not in POLICIES:
        raise UserError(f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}")
    if min_annotators < 1:
        raise UserError(f"--min-annotators must be at least 1, got {min_annotators}")


def accounted_ids(gold: Iterable[Record], conflicts: Iterable[Record]) -> set[int]:
    ids: set[int] = set()
    for record in gold:
        ids.update(record["annotation_ids"])
    for entry in conflicts:
        if isinstance(entry.get("annotation_id"), int):
            ids.add(entry["annotation_id"])
        ids.update(i for i in entry.get("annotation_ids") or () if isinstance(i, int))
    return ids


def unaccounted_annotation_ids(
    annotations: Iterable[Record], gold: Iterable[Record], conflicts: Iterable[Record]
) -> set[int]:
    """Annotation ids found neither in a gold record nor in a conflict entry (should be empty)."""
    return {rec["annotation_id"] for rec in annotations} - accounted_ids(gold, conflicts)


# --- review tasks ------------------------------------------------------------------------


def prediction_result(record: Mapping[str, Any], scheme: Scheme, prefix: str) -> list[dict[str, Any]]:
    """Label Studio result items for one annotation's content: spans, per-region stance, document stance."""
    result: list[dict[str, Any]] = []
    for index, entity in enumerate(record["entities"]):
        region = f"{prefix}_{index}"
        value = {"start": entity["start"], "end": entity["end"], "text": entity["text"]}
        result.append(
            {
                "id": region,
                "from_name": ENTITIES_NAME,
                "to_name": TEXT_NAME,
                "type": "labels",
                "value": {**value, "labels": [entity["label"]]},
            }
        )
        if entity.get("stance") is not None and scheme.mention_stance:
            result.append(
                {
                    "id": region,
                    "from_name": MENTION_STANCE_NAME,
                    "to_name": TEXT_NAME,
                    "type": "choices",
                    "value": {**value, "choices": [entity["stance"]]},
                }
            )
    for target in scheme.stance_targets:
        if target.id in record["stances"]:
            result.append(
                {
                    "id": f"{prefix}_{target.id}",
                    "from_name": target.control_name,
                    "to_name": TEXT_NAME,
                    "type": "choices",
                    "value": {"choices": [record["stances"][target.id]]},
                }
            )
    return result


def check_spans(text: str, record: Mapping[str, Any], what: str) -> None:
    for entity in record["entities"]:
        if text[entity["start"] : entity["end"]] != entity["text"]:
            raise UserError(f"{what}: span {entity['start']}:{entity['end']} does not match the article text")


def review_tasks(
    conflicts: Iterable[Record],
    annotations: Iterable[Record],
    articles: Mapping[str, Record] | Iterable[Record],
    scheme: Scheme | None = None,
) -> list[dict]:
    """Label Studio tasks that let a reviewer settle conflicts, one per conflicted article.

    Each task's `data` has the article's text, title, id and text hash; its `predictions`
    are the competing annotations (made on this text) and the partial adjudication, so the
    reviewer sees every opinion side by side and submits the ground truth.
    """
    from newsstance.scheme import load_scheme

    scheme = scheme or load_scheme()
    if not isinstance(articles, Mapping):
        articles = {article["id"]: article for article in articles}
    reasons: dict[str, list[str]] = defaultdict(list)
    decided: dict[str, Record] = {}
    for entry in conflicts:
        if entry.get("reason") == CANCELLED or not entry.get("article_id"):
            continue
        reasons[entry["article_id"]].append(str(entry.get("reason")))
        if entry.get("kind") == KIND and "entities" in (entry.get("detail") or {}):
            decided[entry["article_id"]] = entry["detail"]
    missing = sorted(set(reasons) - set(articles))
    if missing:
        raise UserError(f"{len(missing)} conflicted article(s) not among the articles given: {', '.join(missing[:5])}")
    by_article: dict[str, list[Record]] = defaultdict(list)
    for record in annotations:
        if record["article_id"] in reasons and not record["cancelled"]:
            by_article[record["article_id"]].append(record)
    tasks = []
    for article_id in sorted(reasons):
        article = articles[article_id]
        text = article["text"]
        predictions = []
        stale = 0
        for record in sorted(by_article[article_id], key=lambda rec: rec["annotation_id"]):
            if record["text_sha256"] != article["text_sha256"]:
                stale += 1
                continue
            check_spans(text, record, f"annotation {record['annotation_id']}")
            predictions.append(
                {
                    "model_version": f"{record['annotator']} (annotation {record['annotation_id']})",
                    "result": prediction_result(record, scheme, f"a{record['annotation_id']}"),
                }
            )
        if article_id in decided:
            check_spans(text, decided[article_id], f"adjudication of {article_id}")
            policy = decided[article_id].get("policy", "")
            predictions.append(
                {
                    "model_version": f"adjudication ({policy}, decided items only)",
                    "result": prediction_result(decided[article_id], scheme, "adj"),
                }
            )
        summary = ", ".join(dict.fromkeys(reasons[article_id]))
        if stale:
            summary += f"; {stale} annotation(s) made on an older text not shown"
        tasks.append(
            {
                "data": {
                    "text": text,
                    "title": article.get("title", ""),
                    "article_id": article_id,
                    "text_sha256": article["text_sha256"],
                    "review": True,
                    "review_reason": summary,
                },
                "predictions": predictions,
            }
        )
    return tasks


# --- command -----------------------------------------------------------------------------


def summary_table(gold: list[Record], entries: list[Record]) -> Table:
    table = Table(title="Adjudication")
    table.add_column("outcome")
    table.add_column("articles", justify="right")
    for method, count in sorted(Counter(rec["method"] for rec in gold).items()):
        table.add_row(f"gold: {method}", str(count))
    for reason, count in sorted(Counter(e["reason"] for e in entries if e["reason"] != CANCELLED).items()):
        table.add_row(f"conflict: {reason}", str(count))
    cancelled = sum(e["reason"] == CANCELLED for e in entries)
    if cancelled:
        table.add_row("cancelled annotations (skipped)", str(cancelled))
    return table


def method_counts(gold: Iterable[Record], entries: Iterable[Record]) -> dict[str, Any]:
    """What adjudication did, for the dataset card: gold articles per method, conflicts per reason."""
    methods = Counter(rec["method"] for rec in gold)
    return {
        "methods": {method: methods.get(method, 0) for method in METHODS},
        "conflicts": dict(sorted(Counter(str(e["reason"]) for e in entries).items())),
    }


def run_adjudicate(
    annotations_path: Path,
    out_path: Path,
    conflicts_path: Path,
    scheme: Scheme,
    policy: str = "majority",
    min_annotators: int = 1,
    console: Console | None = None,
    articles_glob: str | None = None,
    summary_path: Path | None = None,
) -> tuple[list[Record], list[Record]]:
    """Read annotations and pull conflicts, write gold and the conflicts file, print a summary.

    With no annotations it writes nothing (an empty gold file would replace real gold with
    nothing) and says so."""
    with Console(stderr=True).status(f"adjudicating {annotations_path} ({policy})"):
        annotations = read_annotations(annotations_path, scheme)
        existing: list[ConflictLine] = read_lines(conflicts_path)
        check_options(policy, min_annotators)
        if not annotations:
            raise UserError(
                f"no annotations in {annotations_path}: nothing to adjudicate, {out_path} left as it is "
                "(annotate in Label Studio, then `newsstance studio pull`)"
            )
        gold, entries = adjudicate(
            annotations,
            scheme,
            policy,
            min_annotators,
            (line.entry for line in existing),
            corpus_hashes(articles_glob),
        )
        kept = [line.entry for line in existing if line.stage != STAGE]
        unaccounted = unaccounted_annotation_ids(annotations, gold, [*kept, *entries])
        if unaccounted:  # a bug, never a user error: refuse to write rather than lose annotations
            raise RuntimeError(f"annotations neither in gold nor in conflicts: {sorted(unaccounted)[:10]}")
        write_jsonl(out_path, gold)
        replace_conflicts(conflicts_path, entries, replaced=lambda entry: stage_of(entry) == STAGE, existing=existing)
        summary = {"policy": policy, "min_annotators": min_annotators, **method_counts(gold, entries)}
        write_json(summary_path or out_path.with_name(ADJUDICATION_JSON.name), summary)
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    console.print(summary_table(gold, entries))
    console.print(
        f"wrote {len(gold)} gold record(s) to {out_path} and {len(entries)} adjudication entr"
        f"{'y' if len(entries) == 1 else 'ies'} to {conflicts_path}"
    )
    return gold, entries
