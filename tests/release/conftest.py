"""A tiny fictional corpus (articles + gold) written into tmp_path, and an offline `datasets` per test.

Every outlet, person and place is invented. The corpus covers what the release must
handle: a near-duplicate pair, a page with a main and a related article, an entity that
cuts a token (`Kessarian` inside `Kessarians`), mention stance present and absent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

Record = dict[str, Any]

STORIES: list[dict[str, Any]] = [
    {
        "key": "dam-vote",
        "title": "Quellton council backs Tidewater Dam",
        "text": "Mayor Ilsa Varnholt said the Tidewater Dam would protect Quellton from floods.\n\n"
        "The Brackwater Farmers Union called the vote reckless.",
        "source": "The Quellton Ledger",
        "published_at": "2031-03-02T08:15:00Z",
        "entities": [
            ("Ilsa Varnholt", "PERSON", "favor"),
            ("Tidewater Dam", "MISC", "favor"),
            ("Quellton", "GPE", None),
            ("Brackwater Farmers Union", "ORG", "against"),
        ],
        "stances": {"tidewater_dam": "favor", "carbon_levy": "not_about"},
    },
    {
        "key": "levy-debate",
        "title": "Carbon levy splits Norvand parliament",
        "text": "Finance minister Otto Brannick defended the carbon levy in Norvand on Tuesday. "
        "Kessarians living near the border fear higher fuel prices.",
        "source": "Norvand Evening Post",
        "published_at": "2031-03-04T17:40:00Z",
        "entities": [
            ("Otto Brannick", "PERSON", "neutral"),
            ("Norvand", "GPE", None),
            ("Kessarian", "NORP", "neutral"),
        ],
        "stances": {"tidewater_dam": "not_about", "carbon_levy": "neutral"},
    },
    {
        "key": "river-festival",
        "title": "Lantern festival returns to the Seltra River",
        "text": "Thousands gathered on the banks of the Seltra River for the Lantern Night festival, "
        "organised by the Quellton Arts Trust.",
        "source": "The Quellton Ledger",
        "published_at": "2031-03-06T20:00:00Z",
        "entities": [
            ("Seltra River", "LOC", None),
            ("Lantern Night", "EVENT", "favor"),
            ("Quellton Arts Trust", "ORG", "favor"),
        ],
        "stances": {"tidewater_dam": "not_about", "carbon_levy": "not_about"},
    },
    {
        "key": "dam-protest",
        "title": "Farmers march against the dam",
        "text": "About two hundred farmers marched through Brackwater on Saturday against the Tidewater Dam. "
        "Organiser Pell Ostrander said the reservoir would drown their fields.",
        "source": "Brackwater Courier",
        "published_at": "2031-03-08T11:05:00Z",
        "entities": [
            ("Brackwater", "GPE", None),
            ("Tidewater Dam", "MISC", "against"),
            ("Pell Ostrander", "PERSON", "favor"),
        ],
        "stances": {"tidewater_dam": "against", "carbon_levy": "not_about"},
    },
    {
        "key": "levy-business",
        "title": "Shipping firms warn over levy costs",
        "text": "Harrowgate Freight said the carbon levy would add costs to every crossing of the Mirren Strait.",
        "source": "Norvand Evening Post",
        "published_at": "2031-03-09T07:30:00Z",
        "entities": [("Harrowgate Freight", "ORG", "neutral"), ("Mirren Strait", "LOC", None)],
        "stances": {"tidewater_dam": "not_about", "carbon_levy": "against"},
    },
    {
        "key": "levy-greens",
        "title": "Greens want a higher levy",
        "text": "The Norvand Greens urged parliament to double the carbon levy by 2035, "
        "leader Dace Amberly told reporters.",
        "source": "Brackwater Courier",
        "published_at": "2031-03-10T13:00:00Z",
        "entities": [("Norvand Greens", "NORP", "neutral"), ("Dace Amberly", "PERSON", "neutral")],
        "stances": {"tidewater_dam": "not_about", "carbon_levy": "favor"},
    },
    {
        "key": "dam-engineers",
        "title": "Engineers publish dam safety study",
        "text": "A study by the Varn Institute of Engineering found the Tidewater Dam design sound.",
        "source": "The Quellton Ledger",
        "published_at": "2031-03-11T09:45:00Z",
        "entities": [("Varn Institute of Engineering", "ORG", None), ("Tidewater Dam", "MISC", "neutral")],
        "stances": {"tidewater_dam": "neutral", "carbon_levy": "not_about"},
    },
    {
        "key": "market-day",
        "title": "Market day draws crowds in Ostwick",
        "text": "Stallholders in Ostwick reported brisk trade as the spring market opened.",
        "source": "Brackwater Courier",
        "published_at": "2031-03-12T10:00:00Z",
        "entities": [("Ostwick", "GPE", None)],
        "stances": {"tidewater_dam": "not_about", "carbon_levy": "not_about"},
    },
]


def article_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def make_article(key: str, title: str, text: str, source: str, published_at: str, **extra: Any) -> Record:
    text_sha = hashlib.sha256(text.encode()).hexdigest()
    record: Record = {
        "id": article_id(key),
        "title": title,
        "text": text,
        "text_sha256": text_sha,
        "source": source,
        "url": f"https://news.example/{key}",
        "authors": ["Staff Writer"],
        "published_at": published_at,
        "published_at_raw": published_at,
        "published_at_precision": "minute",
        "crawled_at": "2031-04-01T00:00:00Z",
        "language": "en",
        "role": "standalone",
        "related_to": None,
        "duplicate_of": None,
        "truncated": False,
        "provenance": {
            "path": f"raw/{key}.html",
            "sha256": text_sha,
            "format": "html",
            "parser_version": "test-1",
            "encoding": "utf-8",
            "repairs": [],
            "crawl_time_source": "cli",
        },
        "schema_version": "1.0.0",
    }
    record.update(extra)
    return record


def make_gold(article: Record, entities: list[tuple[str, str, str | None]], stances: dict[str, str]) -> Record:
    """Gold record; each entity is found in the text by its surface string (first occurrence)."""
    spans = []
    for surface, label, stance in entities:
        start = article["text"].index(surface)
        spans.append({"start": start, "end": start + len(surface), "label": label, "text": surface, "stance": stance})
    return {
        "article_id": article["id"],
        "text_sha256": article["text_sha256"],
        "entities": spans,
        "stances": stances,
        "annotation_ids": [1],
        "method": "manual",
        "scheme_version": "1.0.0",
    }


def story_records(stories: list[dict[str, Any]]) -> tuple[list[Record], list[Record]]:
    articles, gold = [], []
    for story in stories:
        article = make_article(
            story["key"],
            story["title"],
            story["text"],
            story["source"],
            story["published_at"],
            **story.get("extra", {}),
        )
        articles.append(article)
        if story.get("entities") is not None:
            gold.append(make_gold(article, story["entities"], story["stances"]))
    return articles, gold


def base_stories() -> list[dict[str, Any]]:
    """The eight stories, a near-duplicate of the first, a related article on the fourth's page, one unannotated."""
    stories = [dict(s) for s in STORIES]
    dup = dict(
        STORIES[0],
        key="dam-vote-syndicated",
        source="Norvand Evening Post",
        title="Quellton council backs Tidewater Dam (syndicated)",
        text=STORIES[0]["text"] + "\n\nThis story first appeared in The Quellton Ledger.",
        extra={"duplicate_of": article_id("dam-vote")},
    )
    dup["entities"] = None
    related = {
        "key": "dam-protest-related",
        "title": "Reservoir map: which fields would flood",
        "text": "The planned reservoir would cover parts of Brackwater and Lower Fenn.",
        "source": "Brackwater Courier",
        "published_at": "2031-03-08T11:05:00Z",
        "entities": [("Brackwater", "GPE", None), ("Lower Fenn", "GPE", None)],
        "stances": {"tidewater_dam": "neutral", "carbon_levy": "not_about"},
        "extra": {"role": "related", "related_to": article_id("dam-protest")},
    }
    unannotated = {
        "key": "ferry-timetable",
        "title": "New ferry timetable for Mirren Strait",
        "text": "The Mirren Strait ferry will run every two hours from May.",
        "source": "Norvand Evening Post",
        "published_at": "2031-03-13T06:00:00Z",
        "entities": None,
    }
    stories[3] = dict(stories[3], extra={"role": "main"})
    return [*stories, dup, related, unannotated]


def write_jsonl(path: Path, records: list[Record]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@dataclass
class CorpusFiles:
    articles: Path
    gold: Path
    splits: Path
    out: Path
    article_records: list[Record]
    gold_records: list[Record]


@pytest.fixture
def corpus(tmp_path: Path) -> Callable[..., CorpusFiles]:
    """Write stories as articles.jsonl + gold.jsonl under tmp_path (callable again to change the corpus)."""

    def write(stories: list[dict[str, Any]] | None = None, name: str = "corpus") -> CorpusFiles:
        articles, gold = story_records(stories if stories is not None else base_stories())
        folder = tmp_path / name
        return CorpusFiles(
            articles=write_jsonl(folder / "articles.jsonl", articles),
            gold=write_jsonl(folder / "gold.jsonl", gold),
            splits=tmp_path / "splits.jsonl",
            out=tmp_path / "dist",
            article_records=articles,
            gold_records=gold,
        )

    return write


REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root holding only the scheme, the schemas and the card template, so defaults such as
    `annotations/agreement.json` or `corpus/splits.jsonl` of the developer's checkout never leak in."""
    root = tmp_path / "project"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "scheme.yaml").write_bytes((REPO_ROOT / "annotations" / "scheme.yaml").read_bytes())
    (root / "schema").symlink_to(REPO_ROOT / "schema", target_is_directory=True)
    (root / "dataset_card.md").write_bytes((REPO_ROOT / "dataset_card.md").read_bytes())
    (root / "annotations" / "release.yaml").write_bytes((REPO_ROOT / "annotations" / "release.yaml").read_bytes())
    monkeypatch.setenv("NEWSSTANCE_ROOT", str(root))
    return root


@pytest.fixture(autouse=True)
def offline_fresh_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network and an empty datasets cache per test, so no test can pass on rows cached by another."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def helpers() -> Any:
    """The record makers above, for tests (pytest's importlib mode cannot import conftest by name)."""
    import types

    return types.SimpleNamespace(
        article_id=article_id,
        make_article=make_article,
        make_gold=make_gold,
        base_stories=base_stories,
        story_records=story_records,
        write_jsonl=write_jsonl,
        STORIES=STORIES,
    )
