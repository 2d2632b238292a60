"""Release build time and peak RSS on synthetic annotated articles, next to `Dataset.from_list(rows).to_parquet()`.

    python benchmarks/release_bench.py --articles 10000 [--words 250] [--entities 8]

Each measured step runs in its own child process, which reports its wall time and its own
peak RSS (`ru_maxrss`): (1) `build_release` from JSONL (validation, splits, tokens, BIO,
integrity checks, parquet, card, manifest, load check with a fresh cache); (2) the same
rows (both configs, read from the release beforehand, untimed) through
`datasets.Dataset.from_list(rows, features).to_parquet()`. The corpus is fictional
(made-up syllable names, template sentences) and generated before either step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYLLABLES = ["bra", "ven", "tor", "qui", "lam", "dor", "esk", "ful", "mir", "oth", "zan", "pel", "rud", "sko", "vey"]
FILLER = [
    "the",
    "council",
    "said",
    "on",
    "Tuesday",
    "that",
    "officials",
    "would",
    "review",
    "the",
    "plan",
    "before",
    "the",
    "next",
    "session",
    "while",
    "residents",
    "asked",
    "for",
    "more",
    "details",
    "about",
    "costs",
    "and",
    "timing",
    "as",
    "critics",
    "questioned",
    "whether",
    "the",
    "new",
    "rules",
    "would",
    "work",
    "and",
    "supporters",
    "pointed",
    "to",
    "earlier",
    "reports",
    "from",
    "regional",
    "agencies",
]
LABELS = ["PERSON", "NORP", "ORG", "GPE", "LOC", "EVENT", "MISC"]
STANCES = ["favor", "against", "neutral", None]
DOC_STANCES = ["favor", "against", "neutral", "not_about"]


def _name(rng: random.Random, words: int) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize() for _ in range(words))


def synthetic_pair(index: int, rng: random.Random, words: int, entities: int) -> tuple[dict, dict]:
    """One article and its gold record; entity offsets are tracked while the text is assembled."""
    parts: list[str] = []
    spans = []
    length = 0
    per_entity = max(1, words // max(1, entities))
    for k in range(entities):
        filler = " ".join(rng.choice(FILLER) for _ in range(per_entity))
        parts.append(filler + " ")
        length += len(filler) + 1
        surface = _name(rng, rng.randint(1, 3))
        spans.append(
            {
                "start": length,
                "end": length + len(surface),
                "label": LABELS[(index + k) % len(LABELS)],
                "text": surface,
                "stance": rng.choice(STANCES),
            }
        )
        parts.append(surface + ". ")
        length += len(surface) + 2
    text = "".join(parts).strip()
    sha = hashlib.sha256(text.encode()).hexdigest()
    article_id = hashlib.sha256(f"bench-{index}".encode()).hexdigest()[:16]
    article = {
        "id": article_id,
        "title": f"{_name(rng, 2)} report {index}",
        "text": text,
        "text_sha256": sha,
        "source": f"{_name(rng, 1)} Gazette",
        "url": f"https://bench.example/{index}",
        "authors": [],
        "published_at": f"2031-0{1 + index % 9}-1{index % 10}T08:00:00Z",
        "published_at_raw": None,
        "published_at_precision": "minute",
        "crawled_at": "2031-10-01T00:00:00Z",
        "language": "en",
        "role": "standalone",
        "related_to": None,
        "duplicate_of": None,
        "truncated": False,
        "provenance": {
            "path": f"raw/{index}.html",
            "sha256": sha,
            "format": "html",
            "parser_version": "bench",
            "encoding": "utf-8",
            "repairs": [],
            "crawl_time_source": "cli",
        },
        "schema_version": "1.0.0",
    }
    gold = {
        "article_id": article_id,
        "text_sha256": sha,
        "entities": spans,
        "stances": {"tidewater_dam": rng.choice(DOC_STANCES), "carbon_levy": rng.choice(DOC_STANCES)},
        "annotation_ids": [index],
        "method": "manual",
        "scheme_version": "1.0.0",
    }
    return article, gold


def generate(folder: Path, n: int, words: int, entities: int, gold_limit: int | None = None) -> None:
    """`n` articles; gold records for all of them, or for the first `gold_limit` only (the streaming case:
    a large `articles` config next to a small gold `default` config)."""
    import orjson

    rng = random.Random(7)
    with (folder / "articles.jsonl").open("wb") as articles, (folder / "gold.jsonl").open("wb") as gold:
        for index in range(n):
            article, record = synthetic_pair(index, rng, words, entities)
            articles.write(orjson.dumps(article) + b"\n")
            if gold_limit is None or index < gold_limit:
                gold.write(orjson.dumps(record) + b"\n")


def _peak_mb() -> float:
    """This process's own peak RSS: `VmHWM` (Linux), else `ru_maxrss`, which Linux carries over exec from
    the parent at fork time."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_build(folder: Path) -> dict:
    from newsstance.release.build import build_release

    start, cpu = time.perf_counter(), _cpu_seconds()
    result = build_release(
        version="1.0.0",
        out=folder / "dist",
        articles=[folder / "articles.jsonl"],
        gold=folder / "gold.jsonl",
        splits=folder / "splits.jsonl",
        license_id="cc-by-4.0",
        progress=False,
    )
    return {
        "seconds": time.perf_counter() - start,
        "cpu": _cpu_seconds() - cpu,
        "peak_rss_mb": _peak_mb(),
        "rows": result.rows,
    }


def child_baseline(folder: Path) -> dict:
    import datasets
    import pyarrow.parquet as pq

    from newsstance.release.features import features_for
    from newsstance.release.versions import read_manifest
    from newsstance.scheme import load_scheme

    datasets.disable_progress_bars()
    release = folder / "dist" / "1.0.0"
    manifest = read_manifest(release)
    scheme = load_scheme()
    rows_by_config = {
        config: [
            row for split in splits.values() for f in split["files"] for row in pq.read_table(release / f).to_pylist()
        ]
        for config, splits in manifest["configs"].items()
    }
    rss_rows_mb = _peak_mb()
    start, cpu = time.perf_counter(), _cpu_seconds()
    for config, rows in rows_by_config.items():
        dataset = datasets.Dataset.from_list(rows, features=features_for(scheme, config))
        dataset.to_parquet(str(folder / f"baseline-{config}.parquet"))
    return {
        "seconds": time.perf_counter() - start,
        "cpu": _cpu_seconds() - cpu,
        "peak_rss_mb": _peak_mb(),
        "rss_after_rows_mb": rss_rows_mb,
    }


def run_child(step: str, folder: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", step, "--folder", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=250, help="filler words per article (about)")
    parser.add_argument("--entities", type=int, default=8, help="entity mentions per article")
    parser.add_argument(
        "--sweep",
        help="comma-separated article counts: build peak RSS vs rows with a fixed gold set (--gold), "
        "e.g. 20000,40000,80000 (streamed `articles` config)",
    )
    parser.add_argument("--gold", type=int, default=1000, help="gold records in --sweep mode")
    parser.add_argument("--child", choices=["build", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_build(args.folder) if args.child == "build" else child_baseline(args.folder)))
        return
    if args.sweep:
        sweep([int(n) for n in args.sweep.split(",")], args.words, args.entities, args.gold)
        return
    with tempfile.TemporaryDirectory(prefix="release-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        generate(folder, args.articles, args.words, args.entities)
        size_mb = (folder / "articles.jsonl").stat().st_size / 1e6
        print(
            f"generated {args.articles} articles ({size_mb:.0f} MB JSONL, ~{args.words} words, "
            f"{args.entities} entities each) in {time.perf_counter() - start:.1f}s",
            flush=True,
        )
        build = run_child("build", folder)
        print(
            f"build_release:                    wall {build['seconds']:7.1f} s  cpu {build['cpu']:7.1f} s  "
            f"peak RSS {build['peak_rss_mb']:6.0f} MB   rows {json.dumps(build['rows'])}",
            flush=True,
        )
        base = run_child("baseline", folder)
        print(
            f"Dataset.from_list().to_parquet(): wall {base['seconds']:7.1f} s  cpu {base['cpu']:7.1f} s  "
            f"peak RSS {base['peak_rss_mb']:6.0f} MB   (rows in memory before timing: "
            f"{base['rss_after_rows_mb']:.0f} MB)",
            flush=True,
        )
        print(
            f"ratio build / from_list:  wall {build['seconds'] / base['seconds']:.2f}x  "
            f"cpu {build['cpu'] / base['cpu']:.2f}x  peak RSS {build['peak_rss_mb'] / base['peak_rss_mb']:.2f}x"
            "   (target <= 1.5x)"
        )


def sweep(counts: list[int], words: int, entities: int, gold: int) -> None:
    """Peak RSS of `build_release` as the `articles` config grows and the gold stays fixed: the streamed
    configs should add only the light per-article index (ids, cluster keys, digests), not the texts."""
    print(f"{'articles':>9} {'JSONL MB':>9} {'cpu s':>7} {'peak RSS MB':>12} {'RSS/JSONL':>10}")
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="release-bench-") as tmp:
            folder = Path(tmp)
            generate(folder, n, words, entities, gold_limit=gold)
            size_mb = (folder / "articles.jsonl").stat().st_size / 1e6
            build = run_child("build", folder)
            print(
                f"{n:>9} {size_mb:>9.0f} {build['cpu']:>7.1f} {build['peak_rss_mb']:>12.0f} "
                f"{build['peak_rss_mb'] / size_mb:>10.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
