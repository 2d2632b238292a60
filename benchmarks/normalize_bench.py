"""Figures for the normalize stage (issue 2): speed, memory, validation, MinHash, dedup quality.

    python benchmarks/normalize_bench.py                       # everything, small end-to-end size
    python benchmarks/normalize_bench.py --sizes 10000,100000  # the issue's end-to-end sizes
    python benchmarks/normalize_bench.py --only minhash,dedup,validation

Sections (`--only`): `minhash` (signature docs/s, ours vs datasketch), `dedup` (planted-pair
recall and false merges of `newsstance.normalize.dedup.cluster`), `cluster` (cluster time and
peak RSS over a corpus-sized item stream), `validation` (records/s, jsonschema_rs via
`newsstance.records.validator` vs `jsonschema`), `e2e` (`newsstance normalize` on synthetic
aggregator pages: articles/s, peak RSS of the process tree, planted near-duplicates found).
Targets (2 cores): >= 1,500 articles/s end to end, peak RSS < 1 GB at 100k pages, validation
<= 10% of the time, near-duplicate recall >= 95% at J >= 0.8 with no false merges.
Prints figures; asserts nothing. Generated corpora go to `benchmarks/out/` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth  # the generator next to this script

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
SECTIONS = ("minhash", "dedup", "cluster", "validation", "e2e")
CRAWL_TIME = "2025-03-14T12:00:00Z"


def say(line: str) -> None:
    print(line, flush=True)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "inf"


def timed(function: Callable[[], object], repeat: int = 1) -> float:
    """Best CPU time of `repeat` runs of single-process code: on a shared machine wall time
    measures the neighbours too."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


# -- MinHash -------------------------------------------------------------------------------------------------------


def article_texts(count: int, seed: int = 1) -> list[str]:
    import random

    writer = synth.Writer(synth.Lexicon.build(seed), random.Random(seed))
    return [writer.article().text for _ in range(count)]


def bench_minhash(docs: int) -> dict:
    from datasketch import MinHash

    from newsstance.normalize import dedup

    texts = article_texts(docs)
    words = sum(len(t.split()) for t in texts)
    ours = timed(lambda: [dedup.signature(t) for t in texts], repeat=3)

    def datasketch_batch() -> None:
        for text in texts:
            tokens = synth._WORD.findall(text.casefold())
            grams = [" ".join(tokens[i : i + 5]).encode() for i in range(max(1, len(tokens) - 4))]
            sketch = MinHash(num_perm=dedup.NUM_PERM, seed=1)
            sketch.update_batch(grams)

    theirs = timed(datasketch_batch, repeat=1)
    say(f"minhash: {docs} docs, {words / docs:.0f} words each, {dedup.NUM_PERM} permutations, one process")
    say(f"  newsstance signature      {rate(docs, ours):>10} docs  ({ours / docs * 1e6:.0f} us/doc)")
    say(f"  datasketch update_batch   {rate(docs, theirs):>10} docs  ({theirs / docs * 1e6:.0f} us/doc)")
    return {"docs_per_s": docs / ours, "datasketch_docs_per_s": docs / theirs, "words_per_doc": words / docs}


# -- dedup quality -------------------------------------------------------------------------------------------------


def _item(ident: str, text: str, identity: str | None = None):
    from newsstance.normalize.dedup import DedupItem, signature

    return DedupItem(
        ident,
        identity or f"url:https://bench.example/{ident}",
        hashlib.sha256(text.encode()).hexdigest(),
        len(text),
        False,
        signature(text),
    )


def bench_dedup(pairs: int, distractors: int, thresholds: list[float]) -> dict:
    from newsstance.normalize import dedup

    planted = list(synth.planted_text_pairs(pairs, seed=5))
    items = []
    for index, pair in enumerate(planted):
        items += [_item(f"p{index:06d}a", pair["a"]), _item(f"p{index:06d}b", pair["b"])]
    items += [_item(f"d{index:06d}", text) for index, text in enumerate(article_texts(distractors, seed=99))]
    near = [p for p in planted if p["kind"] == "near"]
    negatives = [p for p in planted if p["kind"] != "near"]
    say(
        f"dedup: {len(planted)} planted pairs ({len(near)} near-duplicates, J spread 0.5-1.0; "
        f"{len(negatives)} look-alikes: same topic / shared boilerplate, max J "
        f"{max(p['jaccard'] for p in negatives):.2f}) + {distractors} distractor articles"
    )
    figures = {}
    for threshold in thresholds:
        seconds = timed(lambda t=threshold: dedup.cluster(items, threshold=t))
        results = dedup.cluster(items, threshold=threshold)

        def root(ident: str, results=results) -> str:
            return results[ident].duplicate_of or ident

        def merged(index: int, root=root) -> bool:
            return root(f"p{index:06d}a") == root(f"p{index:06d}b")

        high = [i for i, p in enumerate(planted) if p["kind"] == "near" and p["jaccard"] >= 0.8]
        gray = [i for i, p in enumerate(planted) if p["kind"] == "near" and p["jaccard"] < 0.8]
        recall = sum(merged(i) for i in high) / len(high)
        gray_rate = sum(merged(i) for i in gray) / max(1, len(gray))
        false_lookalike = sum(merged(i) for i, p in enumerate(planted) if p["kind"] != "near")
        # Any merge across planted units (pair i with pair j, or a distractor) is false too.
        cross = sum(1 for ident, r in results.items() if r.duplicate_of and r.duplicate_of[:7] != ident[:7])
        bands, rows = dedup.lsh_bands(threshold, dedup.NUM_PERM)
        default = " (default)" if threshold == dedup.THRESHOLD else ""
        say(
            f"  threshold {threshold:.2f}{default} LSH {bands}x{rows}: recall@J>=0.8 {recall:.1%} "
            f"({len(high)} pairs), merged in 0.5<=J<0.8 {gray_rate:.0%}, false merges {false_lookalike + cross}, "
            f"cluster {seconds:.2f}s for {len(items)} items"
        )
        figures[threshold] = {"recall": recall, "false_merges": false_lookalike + cross, "gray_rate": gray_rate}
    return figures


# -- cluster at corpus scale ---------------------------------------------------------------------------------------


def cluster_items(records: int, seed: int = 0):
    """A corpus-shaped stream without computing real signatures: ~1/4 of the records are
    main articles (unique texts), the rest related stories from a pool a quarter that size,
    some copies truncated (other text, same identity); 2% of mains have a near copy.
    Unrelated texts get independent random signatures, as real unrelated texts do."""
    from newsstance.normalize.dedup import NUM_PERM, DedupItem

    rng = np.random.default_rng(seed)
    pages = records // 4
    pool = max(30, pages // 4)
    pool_sigs = rng.integers(0, 2**32, (pool, NUM_PERM), dtype=np.uint32)
    popularity = 1.0 / (np.arange(pool) + 1) ** 0.8
    popularity /= popularity.sum()
    emitted = 0
    previous = None
    for page in range(pages):
        sig = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
        if previous is not None and page % 50 == 1:  # near copy of the previous page's main article
            sig = previous.copy()
            flip = rng.random(NUM_PERM) < 0.12
            sig[flip] = rng.integers(0, 2**32, int(flip.sum()), dtype=np.uint32)
        previous = sig
        yield DedupItem(f"{emitted:016x}", f"title:|main {page}", f"{page:064x}", 2000, False, sig)
        emitted += 1
        for story in rng.choice(pool, 3, p=popularity).tolist():
            truncated = rng.random() < 0.12
            text_id = f"{story:032x}{int(truncated) * (1 + int(rng.integers(0, 8))):032x}"
            story_sig = pool_sigs[story] if not truncated else rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
            yield DedupItem(
                f"{emitted:016x}", f"title:outlet|story {story}", text_id, 1500 - 500 * truncated, truncated, story_sig
            )
            emitted += 1


def bench_cluster(records: int) -> dict:
    """Runs in a child process so its peak RSS is its own."""
    code = (
        "import json, resource, sys, time; sys.path.insert(0, sys.argv[2]);"
        "import normalize_bench as b; from newsstance.normalize import dedup;"
        "items = list(b.cluster_items(int(sys.argv[1])));"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "t = time.process_time(); r = dedup.cluster(iter(items));"
        "s = time.process_time() - t;"
        "print(json.dumps({'seconds': s, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        "'base_rss_mb': base / 1024, 'stats': vars(r.stats)}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(records), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    stats = figures["stats"]
    say(
        f"cluster: {records:,} items ({stats['clusters']:,} clusters; exact {stats['exact']:,}, identity "
        f"{stats['identity']:,}, near {stats['near']:,}) in {figures['seconds']:.1f} CPU s = "
        f"{rate(records, figures['seconds'])}; peak RSS {figures['peak_rss_mb']:.0f} MB, of which the items "
        f"themselves {figures['base_rss_mb']:.0f} MB (the pipeline streams them instead)"
    )
    return figures


# -- validation ----------------------------------------------------------------------------------------------------


def sample_records(count: int, normalized: Path | None) -> list[dict]:
    """Real output records when an end-to-end run left some, else schema-shaped synthetic ones."""
    if normalized is not None:
        records = []
        for path in sorted(normalized.glob("articles*.jsonl")):
            with path.open("rb") as handle:
                for line in handle:
                    records.append(json.loads(line))
                    if len(records) == count:
                        return records
        if records:
            return records
    texts = article_texts(min(count, 500), seed=3)
    records = []
    for index in range(count):
        text = texts[index % len(texts)]
        records.append(
            {
                "id": f"{index:016x}",
                "title": f"Fictional title {index}",
                "text": text,
                "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "source": "The Varn Ledger",
                "url": f"https://varnledger.example/2025/03/story-{index}",
                "authors": ["Ilka Dümmerson"],
                "published_at": "2025-03-14T10:42:00Z",
                "published_at_raw": "an hour ago",
                "published_at_precision": "hour",
                "crawled_at": "2025-03-14T12:00:00Z",
                "language": "en",
                "role": "related" if index % 4 else "main",
                "related_to": None if index % 4 == 0 else f"{index:016x}",
                "duplicate_of": None,
                "truncated": False,
                "provenance": {
                    "path": f"pages/{index}.txt",
                    "sha256": "0" * 64,
                    "format": "aggregator",
                    "line_start": 2,
                    "line_end": 9,
                    "parser_version": "bench",
                    "encoding": "utf-8",
                    "repairs": [],
                    "crawl_time_source": "cli",
                    "near_duplicate_jaccard": None,
                },
                "schema_version": "1.0.0",
            }
        )
    return records


def bench_validation(count: int, normalized: Path | None) -> dict:
    import jsonschema

    from newsstance.paths import schema_path
    from newsstance.records import validator

    records = sample_records(count, normalized)
    fast = validator("article.schema.json")
    schema = json.loads(schema_path("article.schema.json").read_text())
    slow = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert all(not fast.errors(r) for r in records[:50]), "sample records should be valid"
    rs = timed(lambda: [fast.errors(r) for r in records], repeat=3)
    subset = records[: max(1, count // 10)]
    py = timed(lambda: [list(slow.iter_errors(r)) for r in subset])
    fast_rate, slow_rate = len(records) / rs, len(subset) / py
    source = "normalize output" if normalized is not None else "synthetic"
    say(f"validation ({source} records, one process):")
    say(f"  jsonschema_rs (records.validator)  {fast_rate:>10,.0f} records/s")
    say(f"  jsonschema + format checker        {slow_rate:>10,.0f} records/s  ({fast_rate / slow_rate:.0f}x slower)")
    return {"jsonschema_rs_per_s": fast_rate, "jsonschema_per_s": slow_rate}


# -- end to end ----------------------------------------------------------------------------------------------------


def pss_bytes(pid: int) -> int | None:
    """Proportional set size of a process (Linux `smaps_rollup`): a page shared by n processes
    counts 1/n in each, so the sum over a process tree is its real footprint. None elsewhere."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class TreeRss:
    """Samples the summed RSS and the summed PSS of a process and all its children (workers)
    until stopped; `peak` and `peak_pss` are the highest sums seen (bytes).

    Summing RSS counts pages shared after fork once per process: an upper bound. Summed PSS
    shares them out: the fair figure for forked workers (0 where /proc has no smaps_rollup)."""

    def __init__(self, pid: int, interval: float = 0.2):
        import psutil

        self._psutil = psutil
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, int]:
        rss = pss = 0
        try:
            procs = [self.process, *self.process.children(recursive=True)]
        except self._psutil.Error:
            return 0, 0
        for proc in procs:
            with contextlib.suppress(self._psutil.Error):
                rss += proc.memory_info().rss
                pss += pss_bytes(proc.pid) or 0
        return rss, pss

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = self._sample()
            self.peak = max(self.peak, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def newsstance_command() -> list[str]:
    script = Path(sys.executable).with_name("newsstance")
    return [str(script)] if script.exists() else [sys.executable, "-m", "newsstance.cli"]


def ensure_corpus(pages: int, seed: int) -> Path:
    """Generate (once) an aggregator corpus of `pages` pages under benchmarks/out."""
    folder = OUT / f"aggregator-{pages}-s{seed}"
    summary = folder / "synth.json"
    if summary.exists() and json.loads(summary.read_text()).get("pages") == pages:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    synth.generate(folder, pages, "aggregator", seed)
    say(f"  generated {pages:,} aggregator pages in {time.perf_counter() - start:.0f}s -> {folder}")
    return folder


def count_output(out_dir: Path) -> dict:
    counts = {"articles": 0, "duplicates": 0, "truncated": 0, "main": 0, "related": 0}
    mains: dict[str, dict] = {}
    for path in sorted(out_dir.glob("articles*.jsonl")):
        with path.open("rb") as handle:
            for line in handle:
                record = json.loads(line)
                counts["articles"] += 1
                counts["duplicates"] += record["duplicate_of"] is not None
                counts["truncated"] += bool(record["truncated"])
                counts[record["role"]] = counts.get(record["role"], 0) + 1
                if record["role"] != "related":  # a page without related blocks gives a standalone record
                    mains.setdefault(record["provenance"]["path"], {"id": record["id"], "dup": record["duplicate_of"]})
    counts["_mains"] = mains
    return counts


def planted_in_output(corpus: Path, mains: dict[str, dict]) -> dict:
    """How many planted near-duplicate page pairs ended in one cluster, and look-alikes merged."""

    def find(rel: str) -> dict | None:
        for key in (f"pages/{rel}", rel):
            if key in mains:
                return mains[key]
        matches = [v for k, v in mains.items() if k.endswith(rel)]
        return matches[0] if len(matches) == 1 else None

    found = {"near_high": 0, "near_high_merged": 0, "lookalike": 0, "lookalike_merged": 0, "unmatched": 0}
    with (corpus / "planted_pairs.jsonl").open() as handle:
        for line in handle:
            pair = json.loads(line)
            a, b = find(pair["a"]), find(pair["b"])
            if a is None or b is None:
                found["unmatched"] += 1
                continue
            same = (a["dup"] or a["id"]) == (b["dup"] or b["id"])
            if pair["kind"] == "near" and pair["jaccard"] >= 0.8:
                found["near_high"] += 1
                found["near_high_merged"] += same
            elif pair["kind"] != "near":
                found["lookalike"] += 1
                found["lookalike_merged"] += same
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_normalize(corpus: Path, out_dir: Path, workers: int, log: Path) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds of the process tree, peak RSS bytes of the tree, exit code).

    CPU time counts the command and its (reaped) worker processes: on a busy machine it shows
    what the run itself costs, where wall time also shows the neighbours."""
    command = [
        *newsstance_command(),
        "normalize",
        str(corpus / "pages"),
        "--out",
        str(out_dir),
        "--crawl-time",
        CRAWL_TIME,
        "--workers",
        str(workers),
    ]
    with log.open("w") as err:
        cpu_before = _children_cpu()
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT, cwd=ROOT)
        with TreeRss(process.pid) as rss:
            code = process.wait()
        seconds = time.perf_counter() - start
    return seconds, _children_cpu() - cpu_before, rss.peak, code


def bench_e2e(sizes: list[int], workers: int, seed: int, keep: bool) -> tuple[dict, Path | None]:
    figures: dict[int, dict] = {}
    last_out = None
    for pages in sizes:
        say(f"end to end: newsstance normalize, {pages:,} aggregator pages, --workers {workers}")
        corpus = ensure_corpus(pages, seed)
        out_dir = OUT / f"normalized-{pages}-s{seed}"
        shutil.rmtree(out_dir, ignore_errors=True)
        log = OUT / f"normalize-{pages}.log"
        seconds, cpu, peak, code = run_normalize(corpus, out_dir, workers, log)
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            say(f"  normalize failed (exit {code}); last lines of {log}:")
            for line in tail:
                say(f"    {line}")
            figures[pages] = {"error": code}
            continue
        counts = count_output(out_dir)
        planted = planted_in_output(corpus, counts.pop("_mains"))
        rerun_seconds, _, _, _ = run_normalize(corpus, out_dir, workers, OUT / f"normalize-{pages}-rerun.log")
        articles = counts["articles"]
        recall = planted["near_high_merged"] / planted["near_high"] if planted["near_high"] else float("nan")
        say(
            f"  {articles:,} articles ({counts['main']:,} main, {counts.get('standalone', 0):,} standalone, "
            f"{counts['related']:,} related, "
            f"{counts['duplicates']:,} duplicate_of set, {counts['truncated']:,} truncated) in {seconds:.1f}s"
        )
        say(
            f"  => {rate(articles, seconds)} articles, {rate(pages, seconds)} pages (wall); peak RSS (process tree) "
            f"{peak / 2**20:,.0f} MB; unchanged re-run {rerun_seconds:.1f}s"
        )
        say(
            f"  CPU {cpu:.1f}s over all processes = {rate(articles, cpu)} articles per CPU second; "
            f"CPU-bound on {workers} idle cores: ~{rate(articles, cpu / workers)} articles (upper bound: the merge "
            "phase is serial)"
        )
        say(
            f"  planted near-duplicate pages (J>=0.8) merged: {planted['near_high_merged']}/{planted['near_high']}"
            f" ({recall:.0%}); look-alike pages merged: {planted['lookalike_merged']}/{planted['lookalike']}"
            + (f"; pairs not found in output: {planted['unmatched']}" if planted["unmatched"] else "")
        )
        figures[pages] = {
            "articles": articles,
            "seconds": seconds,
            "articles_per_s": articles / seconds,
            "cpu_seconds": cpu,
            "peak_rss_mb": peak / 2**20,
            "rerun_seconds": rerun_seconds,
            **planted,
        }
        if not keep:
            shutil.rmtree(corpus, ignore_errors=True)
            if last_out is not None:  # only the last output is kept, for the validation section
                shutil.rmtree(last_out, ignore_errors=True)
        last_out = out_dir
    return figures, last_out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000", help="end-to-end page counts, comma separated (issue: 10000,100000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run: {','.join(SECTIONS)}")
    parser.add_argument("--minhash-docs", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=2000, help="planted pairs for the dedup section")
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--thresholds", default="0.6,0.7,0.75")
    parser.add_argument("--cluster-records", type=int, default=400_000, help="items for the cluster section")
    parser.add_argument("--validation-records", type=int, default=5000)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep generated corpora (reused by the next run) and normalize outputs in benchmarks/out",
    )
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    say(f"normalize benchmarks on {os.cpu_count()} cores, python {sys.version.split()[0]}")
    figures: dict[str, object] = {}
    normalized = None
    if "e2e" in only:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        figures["e2e"], normalized = bench_e2e(sizes, args.workers, args.seed, args.keep)
    if "minhash" in only:
        figures["minhash"] = bench_minhash(args.minhash_docs)
    if "dedup" in only:
        figures["dedup"] = bench_dedup(args.pairs, args.distractors, [float(t) for t in args.thresholds.split(",")])
    if "cluster" in only:
        figures["cluster"] = bench_cluster(args.cluster_records)
    if "validation" in only:
        figures["validation"] = bench_validation(args.validation_records, normalized)
        e2e = figures.get("e2e") or {}
        speed = figures["validation"]
        for pages, run in e2e.items():
            if "cpu_seconds" in run:
                # Every record is validated once when built (duplicates once more when marked).
                cpu_per_article = run["cpu_seconds"] / run["articles"]
                say(
                    f"  validation share of end-to-end CPU at {pages:,} pages: "
                    f"~{1 / speed['jsonschema_rs_per_s'] / cpu_per_article:.1%} "
                    f"(with jsonschema it would be ~{1 / speed['jsonschema_per_s'] / cpu_per_article:.0%})"
                )
    if normalized is not None and not args.keep:
        shutil.rmtree(normalized, ignore_errors=True)
    say(f"peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
