"""Build annotations/sample/gold.jsonl from the hand annotations in gold_source.yaml.

The judgments (spans, labels, stances) are written by hand in gold_source.yaml; this script only turns each
surface string into code-point offsets in the normalised article text, so the gold stays right when offsets
shift. It fails loudly when a surface is missing, when two annotated spans cross, or when the article is not a
canonical article of the normalised sample.

    python annotations/sample/build_gold.py [--articles corpus/normalized] [--out annotations/sample/gold.jsonl]
        [--report-uncovered]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from newsstance.errors import UserError
from newsstance.ids import text_sha256
from newsstance.paths import project_root
from newsstance.records import read_jsonl, write_jsonl
from newsstance.scheme import Scheme, load_scheme, record_validator

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    stance: str | None
    text: str

    def contains(self, other: Span) -> bool:
        longer = (self.end - self.start) > (other.end - other.start)
        return self.start <= other.start and other.end <= self.end and longer

    def crosses(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end and not (self.contains(other) or other.contains(self))


def load_articles(location: Path) -> dict[str, dict[str, Any]]:
    """Normalised article records by id, from a JSONL file or a folder of articles*.jsonl."""
    files = sorted(location.glob("articles*.jsonl")) if location.is_dir() else [location]
    if not files or not files[0].exists():
        raise UserError(f"no normalised articles at {location} (run `newsstance normalize` first)")
    return {rec["id"]: rec for path in files for rec in read_jsonl(path)}


def whole_word_matches(text: str, surface: str) -> list[tuple[int, int]]:
    """Occurrences of `surface` not glued to letters or digits on either side (no partial words)."""
    pattern = re.compile(rf"(?<!\w){re.escape(surface)}(?!\w)")
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def pick_occurrences(matches: list[tuple[int, int]], occurrence: int | list[int] | None, where: str):
    if occurrence is None:
        return matches
    wanted = [occurrence] if isinstance(occurrence, int) else list(occurrence)
    bad = [n for n in wanted if not 1 <= n <= len(matches)]
    if bad:
        raise UserError(f"{where}: occurrence {bad} out of range (found {len(matches)})")
    return [matches[n - 1] for n in wanted]


def resolve_entities(text: str, entries: list[dict[str, Any]], scheme: Scheme, where: str) -> list[Span]:
    """All spans of the article: longer spans win over spans they contain; crossing spans are an error."""
    candidates: list[Span] = []
    for entry in entries:
        surface, label = entry["text"], entry["label"]
        if label not in scheme.entity_names:
            raise UserError(f"{where}: unknown label {label!r} for {surface!r}")
        stance = entry.get("stance", "neutral")
        if stance is not None and stance not in scheme.stance_names:
            raise UserError(f"{where}: unknown stance {stance!r} for {surface!r}")
        matches = whole_word_matches(text, surface)
        if not matches:
            raise UserError(f"{where}: surface {surface!r} not found in the normalised text")
        for start, end in pick_occurrences(matches, entry.get("occurrence"), f"{where} {surface!r}"):
            candidates.append(Span(start, end, label, stance, surface))
    kept = [s for s in candidates if not any(o.contains(s) for o in candidates)]
    by_offsets: dict[tuple[int, int], Span] = {}
    for span in kept:
        previous = by_offsets.setdefault((span.start, span.end), span)
        if previous != span:
            raise UserError(f"{where}: {span.text!r} at {span.start} annotated twice ({previous.label}, {span.label})")
    spans = sorted(by_offsets.values(), key=lambda s: (s.start, s.end))
    for left, right in itertools.pairwise(spans):
        if left.crosses(right):
            raise UserError(f"{where}: spans {left.text!r} and {right.text!r} cross")
    unused_entries = {e["text"] for e in entries} - {s.text for s in spans}
    if unused_entries:
        raise UserError(f"{where}: {sorted(unused_entries)} only occur inside longer spans - remove them")
    for span in spans:
        if text[span.start:span.end] != span.text:
            raise UserError(f"{where}: offset check failed for {span.text!r}")
    return spans


def gold_record(item: dict[str, Any], article: dict[str, Any], scheme: Scheme) -> dict[str, Any]:
    where = f"{item.get('ref') or item['article_id']}"
    text = article["text"]
    if text_sha256(text) != article["text_sha256"]:
        raise UserError(f"{where}: the article's text_sha256 does not match its text")
    stances = item["stances"]
    if set(stances) != set(scheme.target_ids):
        raise UserError(f"{where}: stances must cover exactly {scheme.target_ids}, got {sorted(stances)}")
    spans = resolve_entities(text, item["entities"], scheme, where)
    return {
        "article_id": article["id"],
        "text_sha256": article["text_sha256"],
        "entities": [{"start": s.start, "end": s.end, "label": s.label, "text": s.text, "stance": s.stance}
                     for s in spans],
        "stances": {target: stances[target] for target in scheme.target_ids},
        "annotation_ids": [],
        "method": "manual",
        "scheme_version": scheme.scheme_version,
    }


def record_order(article: dict[str, Any]) -> tuple[int, int, int]:
    """Position of a record inside its raw file (page order, line order, array order)."""
    prov = article["provenance"]
    return prov.get("line_start") or 0, prov.get("byte_start") or 0, prov.get("record_index") or 0


def find_by_ref(ref: str, articles: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The `index`-th record of raw file `name` for a ref `name#index`, whatever folder the corpus root was."""
    name, _, index = ref.rpartition("#")
    in_file = [a for a in articles.values()
               if a["provenance"]["path"] == name or a["provenance"]["path"].endswith("/" + name)]
    in_file.sort(key=record_order)
    position = int(index)
    return in_file[position] if 0 <= position < len(in_file) else None


def find_article(item: dict[str, Any], articles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The annotated article: by id; by `ref` when the id is stale (ids depend on the corpus root)."""
    ref, article_id = item.get("ref"), item.get("article_id")
    article = articles.get(article_id or "")
    if article is None and ref:
        article = find_by_ref(ref, articles)
        if article is not None:
            print(f"note: {ref}: article_id {article_id} not found; using {article['id']} found by ref",
                  file=sys.stderr)
    if article is None:
        same_title = [a["id"] for a in articles.values() if a["title"] == item.get("title") and not a["duplicate_of"]]
        raise UserError(f"{ref}: article_id {article_id!r} not in the normalised articles"
                        f" (canonical articles with this title: {same_title})")
    canonical = articles.get(article["duplicate_of"] or "")
    if canonical is not None and canonical["text_sha256"] == article["text_sha256"]:
        print(f"note: {ref}: {article['id']} is an exact duplicate; annotating its canonical {canonical['id']}",
              file=sys.stderr)
        article = canonical
    if article["duplicate_of"]:
        raise UserError(f"{ref}: {article['id']} is a duplicate of {article['duplicate_of']}: annotate the "
                        "canonical article")
    if article["title"] != item.get("title"):  # exact duplicates share the title too
        raise UserError(f"{ref}: title mismatch: {article['title']!r} != {item.get('title')!r}")
    return article


def uncovered_words(text: str, spans: list[Span]) -> list[str]:
    """Capitalised words (not sentence-initial) outside every span: a reviewer's checklist for missed names."""
    covered = [(s.start, s.end) for s in spans]
    words = []
    for m in re.finditer(r"[A-Z][\w'-]*", text):
        before = text[:m.start()].rstrip(" '\"‘“")
        if not before or before[-1] in ".!?:\n":
            continue
        if not any(start <= m.start() < end for start, end in covered):
            words.append(m.group())
    return words


def build(source: Path, articles_at: Path, out: Path, report_uncovered: bool = False) -> int:
    scheme = load_scheme()
    items = yaml.safe_load(source.read_text(encoding="utf-8"))["articles"]
    articles = load_articles(articles_at)
    seen: set[str] = set()
    records = []
    validator = record_validator("gold")
    for item in items:
        article = find_article(item, articles)
        if article["id"] in seen:
            raise UserError(f"{item.get('ref')}: article {article['id']} annotated twice")
        seen.add(article["id"])
        record = gold_record(item, article, scheme)
        errors = validator.errors(record)
        if errors:
            raise UserError(f"{item.get('ref')}: gold record fails the schema: {'; '.join(map(str, errors))}")
        if report_uncovered:
            spans = [Span(e["start"], e["end"], e["label"], e["stance"], e["text"]) for e in record["entities"]]
            words = uncovered_words(article["text"], spans)
            if words:
                print(f"{item.get('ref')}: {' '.join(words)}", file=sys.stderr)
        records.append(record)
    write_jsonl(out, records)
    return len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = project_root()
    parser.add_argument("--source", type=Path, default=HERE / "gold_source.yaml")
    parser.add_argument("--articles", type=Path, default=root / "corpus" / "normalized",
                        help="normalised articles: a folder of articles*.jsonl or one JSONL file")
    parser.add_argument("--out", type=Path, default=HERE / "gold.jsonl")
    parser.add_argument("--report-uncovered", action="store_true",
                        help="list capitalised words outside every span (to review for missed names)")
    args = parser.parse_args(argv)
    try:
        count = build(args.source, args.articles, args.out, args.report_uncovered)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {count} gold records to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
