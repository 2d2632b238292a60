"""The bands stage split over tasks: planted near-duplicate pairs found whatever the number of
band tasks (each task decides a pair once, even when it collides in several of its bands), and
nothing else merged; the planted pairs' true Jaccard is computed with plain Python sets."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import orjson

from newsstance.normalize.runner import run_normalize

CRAWL = "2026-03-14T09:30:00Z"


def _corpus(raw: Path) -> dict[str, str]:
    """Sixteen planted pairs: a made-up report and a copy with 0 to 3 words replaced (Jaccard
    about 0.87 or more); url -> text."""
    rng = random.Random(11)
    words = sorted({"".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3)) for _ in range(4000)})
    texts: dict[str, str] = {}
    for family in range(16):
        base = [rng.choice(words) for _ in range(220)]
        for copy in range(2):
            edited = list(base)
            for at in rng.sample(range(220), copy * (family % 4)):
                edited[at] = f"zq{rng.randrange(10**9)}"
            sentences = [" ".join(edited[i : i + 11]).capitalize() + "." for i in range(0, 220, 11)]
            url = f"https://fenwick-gazette.example/{family}/{copy}"
            texts[url] = "\n\n".join(" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4))
            folder = raw / f"site{copy}"
            folder.mkdir(parents=True, exist_ok=True)
            record = {
                "title": f"Fenwick report {family}" + ("" if copy == 0 else " (again)"),
                "maintext": texts[url],
                "url": url,
                "source_domain": "fenwick-gazette.example",
                "date_publish": "2026-03-10 08:00:00",
                "language": "en",
            }
            (folder / f"{family:02d}.json").write_bytes(orjson.dumps(record))
    return texts


def test_near_duplicates_are_found_whatever_the_number_of_band_tasks(tmp_path, true_jaccard):
    raw = tmp_path / "raw"
    texts = _corpus(raw)
    shards = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        run_normalize([raw], out, crawl_time=CRAWL, workers=workers)
        shards[workers] = {p.name: p.read_bytes() for p in sorted(out.glob("articles-*.jsonl"))}
    assert shards[1] == shards[2]
    records = [orjson.loads(line) for data in shards[1].values() for line in data.splitlines()]
    by_id = {r["id"]: r for r in records}
    cluster_of = {r["url"]: r["duplicate_of"] or r["id"] for r in records}
    for url, text in texts.items():
        for other, other_text in texts.items():
            if url < other:
                planted = url.rsplit("/", 1)[0] == other.rsplit("/", 1)[0]
                assert (cluster_of[url] == cluster_of[other]) == planted, (url, other)
                assert true_jaccard(text, other_text) >= (0.85 if planted else 0.0)
    near = [r for r in records if r["duplicate_of"] and r["provenance"]["near_duplicate_jaccard"] < 1]
    assert len(near) >= 8 and all(by_id[r["duplicate_of"]]["duplicate_of"] is None for r in near)


def test_band_key_rows_are_read_alone_and_a_cut_file_is_an_error(tmp_path) -> None:
    import pytest

    from newsstance.normalize import engine

    keys = np.random.default_rng(3).integers(0, 2**64 - 1, size=(21, 1000), dtype=np.uint64)
    path = tmp_path / engine.NODE_BANDS_FILE
    engine._save(path, keys)
    for band in (0, 7, 20):
        assert np.array_equal(engine._npy_row(path, band), keys[band])
    with pytest.raises(ValueError):
        engine._npy_row(path, 21)
    path.write_bytes(path.read_bytes()[:-8])
    assert np.array_equal(engine._npy_row(path, 19), keys[19])
    with pytest.raises(ValueError):
        engine._npy_row(path, 20)
