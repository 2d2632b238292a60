"""Fixtures of the evaluate tests: a small fictional release `dist/0.1.0/`.

Articles are generated from fictional sentence templates (no third-party text) and
built into a release by the real `newsstance.release` builder, with a frozen split file
so the split of each article is known. Everything is loaded back with the real
`datasets.load_dataset`. Every test gets a fresh HF cache and offline mode.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from newsstance.scheme import Scheme, load_scheme

# (surface, label) of fictional named entities.
NAMES = {
    "PERSON": ["Elara Quint", "Tomas Vey", "Mira Solberg", "Oren Halloway", "Ysolde Brannock", "Pell Arkwright"],
    "NORP": ["Norvandian", "Kellish", "Greyfell Greens"],
    "ORG": ["Norvandian Water Authority", "Vessen Ledger", "Brannock Freight", "Coastal Farmers Union"],
    "GPE": ["Port Vessen", "Norvandia", "Kellmark", "Ostrava Bay"],
    "LOC": ["Ashdown River", "Greyfell Valley", "Saltmere Ridge"],
    "EVENT": ["Harbour Summit", "Spring Floods", "Tidewater Hearings"],
    "MISC": ["Clean Rivers Act", "Levy Bill 12", "Blue Ledger Report"],
}

STANCE_SENTENCES = {
    "tidewater_dam": {
        "favor": "Supporters said the Tidewater Dam would protect homes from floods.",
        "against": "Critics warned the Tidewater Dam would ruin the valley.",
        "neutral": "The Tidewater Dam plan was discussed at length, with no decision.",
        "not_about": None,
    },
    "carbon_levy": {
        "favor": "The carbon levy was praised as a fair way to cut emissions.",
        "against": "Opponents called the carbon levy a tax on working families.",
        "neutral": "Officials explained how the carbon levy would be collected.",
        "not_about": None,
    },
}

TEMPLATES = [
    "{PERSON} of {GPE} met {ORG} officials on Tuesday.",
    "The {NORP} delegation visited the {LOC} before the {EVENT}.",
    "{PERSON} said the {MISC} needed more time.",
    "Residents of {GPE} gathered near the {LOC}.",
    "According to the {ORG}, {PERSON} will speak at the {EVENT}.",
]


def release_features(scheme: Scheme, with_offsets: bool = True) -> Features:
    columns: dict[str, Any] = {
        name: Value("string") for name in ("id", "title", "text", "source", "url", "published_at", "language")
    }
    columns["entities"] = List(
        {
            "start": Value("int32"),
            "end": Value("int32"),
            "label": ClassLabel(names=scheme.entity_names),
            "text": Value("string"),
            "stance": ClassLabel(names=scheme.stance_names),
        }
    )
    columns["tokens"] = List(Value("string"))
    if with_offsets:
        columns["token_starts"] = List(Value("int32"))
        columns["token_ends"] = List(Value("int32"))
    columns["ner_tags"] = List(ClassLabel(names=scheme.bio_tags))
    columns["stances"] = {t: ClassLabel(names=scheme.document_stance_names) for t in scheme.target_ids}
    return Features(columns)


def fictional_story(number: int, rng: random.Random, scheme: Scheme) -> dict[str, Any]:
    """One annotated fictional article: text from templates, entity spans and stances (label names)."""
    entities: list[dict[str, Any]] = []
    text = ""
    for template in rng.sample(TEMPLATES, k=rng.randint(2, 4)):
        prefix = text + (" " if text else "")
        sentence = ""
        for part in re.split(r"(\{[A-Z]+\})", template):
            if part.startswith("{"):
                label = part[1:-1]
                surface = rng.choice(NAMES[label])
                start = len(prefix) + len(sentence)
                entities.append(
                    {
                        "start": start,
                        "end": start + len(surface),
                        "label": label,
                        "text": surface,
                        "stance": rng.choice([*scheme.stance_names, None]),
                    }
                )
                sentence += surface
            else:
                sentence += part
        text = prefix + sentence
    stances = {}
    for target in scheme.target_ids:
        stances[target] = rng.choices(scheme.document_stance_names, weights=[3, 2, 1, 2])[0]
        if STANCE_SENTENCES[target][stances[target]]:
            text += " " + STANCE_SENTENCES[target][stances[target]]
    return {
        "id": hashlib.sha256(f"fixture-{number}".encode()).hexdigest()[:16],
        "title": f"Fictional report {number}",
        "text": text,
        "source": "Vessen Ledger",
        "url": f"https://ledger.example/{number}",
        "published_at": f"2031-03-{1 + number % 28:02d}T09:00:00Z",
        "language": "en",
        "entities": entities,
        "stances": stances,
    }


def story_records(story: dict[str, Any], scheme: Scheme) -> tuple[dict[str, Any], dict[str, Any]]:
    """The story as an article record (schema/article.schema.json) and its gold record (gold.schema.json)."""
    text_sha = hashlib.sha256(story["text"].encode()).hexdigest()
    article = {
        **{key: story[key] for key in ("id", "title", "text", "source", "url", "published_at", "language")},
        "text_sha256": text_sha,
        "authors": ["Staff Writer"],
        "published_at_raw": story["published_at"],
        "published_at_precision": "minute",
        "crawled_at": "2031-04-01T00:00:00Z",
        "role": "standalone",
        "related_to": None,
        "duplicate_of": None,
        "truncated": False,
        "provenance": {
            "path": f"raw/{story['id']}.html",
            "sha256": text_sha,
            "format": "html",
            "parser_version": "test-1",
            "encoding": "utf-8",
            "repairs": [],
            "crawl_time_source": "cli",
        },
        "schema_version": "1.0.0",
    }
    gold = {
        "article_id": story["id"],
        "text_sha256": text_sha,
        "entities": story["entities"],
        "stances": story["stances"],
        "annotation_ids": [1],
        "method": "manual",
        "scheme_version": scheme.scheme_version,
    }
    return article, gold


def build_with_release_builder(folder: Path, stories: dict[str, list[dict[str, Any]]], scheme: Scheme) -> Path:
    """`dist/0.1.0/` made by the real `newsstance.release.build.build_release`, splits frozen as given."""
    from newsstance.release.build import build_release

    records = {
        split: [story_records(story, scheme) for story in split_stories] for split, split_stories in stories.items()
    }
    inputs = folder / "inputs"
    inputs.mkdir(parents=True)
    write_jsonl(inputs / "articles.jsonl", [a for pairs in records.values() for a, _ in pairs])
    write_jsonl(inputs / "gold.jsonl", [g for pairs in records.values() for _, g in pairs])
    write_jsonl(inputs / "splits.jsonl", [{"id": s["id"], "split": split} for split, ss in stories.items() for s in ss])
    result = build_release(
        version="0.1.0",
        out=folder / "dist",
        articles=[inputs / "articles.jsonl"],
        gold=inputs / "gold.jsonl",
        splits=inputs / "splits.jsonl",
        scheme=scheme,
        progress=False,
    )
    return result.path


def read_release_rows(release: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of the default config per split, read straight from the parquet files (not through our loader)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((release / "data").rglob("*.parquet")):
        relative = path.relative_to(release / "data").parts
        if len(relative) > 1 and relative[0] != "default":
            continue
        split = path.name.split("-")[0]
        rows.setdefault(split, []).extend(pq.read_table(path).to_pylist())
    return rows


@pytest.fixture(scope="session")
def scheme() -> Scheme:
    return load_scheme()


@pytest.fixture(scope="session")
def stories(scheme: Scheme) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(7)
    made = [fictional_story(number, rng, scheme) for number in range(48)]
    return {"train": made[:24], "validation": made[24:30], "test": made[30:]}


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory: pytest.TempPathFactory, stories: dict, scheme: Scheme) -> Path:
    """dist/0.1.0/ of the fictional corpus, built by the real release builder (shared: tests only read it)."""
    return build_with_release_builder(tmp_path_factory.mktemp("release"), stories, scheme)


@pytest.fixture(scope="session")
def fixture_rows(release_dir: Path, stories: dict) -> dict[str, list[dict[str, Any]]]:
    """The release's rows per split (ClassLabel ids), in the release's row order."""
    rows = read_release_rows(release_dir)
    assert {split: sorted(r["id"] for r in split_rows) for split, split_rows in rows.items()} == {
        split: sorted(s["id"] for s in split_stories) for split, split_stories in stories.items()
    }
    return rows


@pytest.fixture()
def make_release(tmp_path: Path, scheme: Scheme) -> Callable[..., Path]:
    def make(splits: dict[str, list[dict[str, Any]]], name: str = "0.1.0", with_offsets: bool = True) -> Path:
        return write_release(tmp_path / "dist" / name, splits, scheme, with_offsets)

    return make


def write_release(
    folder: Path, splits: dict[str, list[dict[str, Any]]], scheme: Scheme, with_offsets: bool = True
) -> Path:
    """A release folder laid out by hand: data/<split>-00000-of-00001.parquet + README.md YAML configs.

    For layouts the builder never makes on purpose: a folder rebuilt in place under the same
    file names (stale-cache test) and a release without token offsets.
    """
    features = release_features(scheme, with_offsets)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    yaml_lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split, rows in splits.items():
        rows = [{k: v for k, v in row.items() if k in features} for row in rows]
        Dataset.from_list(rows, features=features).to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
        yaml_lines += [f"  - split: {split}", f"    path: data/{split}-*.parquet"]
    yaml_lines += ["---", "", "# Fictional fixture release", ""]
    (folder / "README.md").write_text("\n".join(yaml_lines), encoding="utf-8")
    return folder


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))


@pytest.fixture(autouse=True)
def fresh_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh datasets cache and offline mode for every test (env for subprocesses, config in process)."""
    import datasets.config

    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache
