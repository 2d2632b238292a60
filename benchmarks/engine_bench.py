"""The normalize engine (datatrove stages) against the runner it replaced, on the same pages.

    python benchmarks/engine_bench.py --pages 100000 --workers 2 --keep
    python benchmarks/engine_bench.py --pages 2000                     # a quick check

Generates (once, with --keep) a mixed corpus with `synth.py` (60% aggregator text, 20% HTML,
10% news-please JSON, 10% JSONL; no WARC: the WARC reader is the `sources` work), exports the
old runner's code from git (`--old-rev`, default: main before the engine) and runs both as
`newsstance normalize --workers N` child processes, one after the other, on the same pages:

- articles per CPU second (the whole process tree: stable on a shared machine) and wall time;
- peak RSS of the process tree (sampled; summed over processes: an upper bound);
- planted near-duplicate page pairs (J >= 0.8) found in one cluster, look-alike pairs merged;
- a re-run after changing 1% of the inputs, and an unchanged re-run, as a share of the full run.

Prints figures and writes them as JSON (`--json`); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import normalize_bench as nb  # TreeRss, count_output, planted_in_output
import synth

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
CRAWL_TIME = "2025-03-14T12:00:00Z"
OLD_REV = "6f4b1f3"  # main before the engine: the home-made runner (`--workers` process pool)


def say(line: str) -> None:
    print(line, flush=True)


def ensure_corpus(pages: int, seed: int) -> Path:
    folder = OUT / f"mix-{pages}-s{seed}"
    summary = folder / "synth.json"
    if summary.exists() and json.loads(summary.read_text()).get("pages") == pages:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    synth.generate(folder, pages, "mix", seed)
    say(f"generated {pages:,} mixed pages in {time.perf_counter() - start:.0f}s -> {folder}")
    return folder


def export_old_runner(rev: str) -> Path:
    """The code of a revision, exported from git (not checked out: the worktree stays as it is)."""
    target = OUT / f"code-{rev}"
    if (target / "scripts" / "newsstance").is_dir():
        return target
    archive = subprocess.run(["git", "archive", rev, "scripts"], cwd=ROOT, capture_output=True, check=True).stdout
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def normalize(code: Path, corpus: Path, out: Path, workers: int, log: Path) -> dict:
    """One `newsstance normalize` child process with the code under `code`: CPU, wall, peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(code / "scripts")}
    command = [sys.executable, "-m", "newsstance.cli", "normalize", str(corpus / "pages"), "--out", str(out)]
    command += ["--crawl-time", CRAWL_TIME, "--workers", str(workers), "-q"]
    with log.open("w") as err:
        cpu_before = nb._children_cpu()
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        with nb.TreeRss(process.pid) as rss:
            code_ = process.wait()
        wall = time.perf_counter() - start
    cpu = nb._children_cpu() - cpu_before
    if code_ != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"normalize failed (exit {code_}), see {log}:\n" + "\n".join(tail))
    return {"cpu_seconds": cpu, "wall_seconds": wall, "peak_rss_mb": rss.peak / 2**20}


def change_inputs(corpus: Path, share: float, seed: int) -> dict[Path, bytes]:
    """Edit `share` of the input files (a sentence added to the text); returns the originals."""
    files = sorted((corpus / "pages").rglob("*.*"))
    chosen = random.Random(seed).sample(files, max(1, round(len(files) * share)))
    originals = {}
    for path in chosen:
        data = path.read_bytes()
        originals[path] = data
        if path.suffix in (".json", ".jsonl"):
            edited = data.replace(b'"maintext": "', b'"maintext": "Edited for the re-run benchmark. ', 1)
        elif path.suffix == ".html":
            edited = data.replace(b"<p>", b"<p>Edited for the re-run benchmark. ", 1)
        else:
            lines = data.split(b"\n")
            lines.insert(1, b"Edited for the re-run benchmark, with a sentence that was not there before.")
            edited = b"\n".join(lines)
        path.write_bytes(edited)
    return originals


def measure(name: str, code: Path, corpus: Path, workers: int, share: float, seed: int) -> dict:
    out = OUT / f"engine-bench-{name}"
    shutil.rmtree(out, ignore_errors=True)
    full = normalize(code, corpus, out, workers, OUT / f"engine-bench-{name}.log")
    counts = nb.count_output(out)
    planted = nb.planted_in_output(corpus, counts.pop("_mains"))
    unchanged = normalize(code, corpus, out, workers, OUT / f"engine-bench-{name}-unchanged.log")
    originals = change_inputs(corpus, share, seed)
    try:
        changed = normalize(code, corpus, out, workers, OUT / f"engine-bench-{name}-changed.log")
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
    figures = {
        **full,
        "articles": counts["articles"],
        "duplicates": counts["duplicates"],
        "articles_per_cpu_second": counts["articles"] / full["cpu_seconds"],
        **planted,
        "rerun_unchanged_cpu_seconds": unchanged["cpu_seconds"],
        "rerun_changed_cpu_seconds": changed["cpu_seconds"],
        "rerun_changed_files": len(originals),
        "rerun_changed_peak_rss_mb": changed["peak_rss_mb"],
    }
    recall = planted["near_high_merged"] / planted["near_high"] if planted["near_high"] else float("nan")
    say(
        f"{name:>6}: {counts['articles']:,} articles ({counts['duplicates']:,} duplicate_of) in "
        f"{full['cpu_seconds']:,.1f} CPU-s = {figures['articles_per_cpu_second']:,.0f} articles/CPU-s "
        f"(wall {full['wall_seconds']:,.0f}s); peak RSS {full['peak_rss_mb']:,.0f} MB"
    )
    say(
        f"        planted near-duplicates (J>=0.8) merged {planted['near_high_merged']}/{planted['near_high']} "
        f"({recall:.1%}); look-alikes merged {planted['lookalike_merged']}/{planted['lookalike']}"
    )
    say(
        f"        re-run, {len(originals):,} inputs ({share:.0%}) changed: {changed['cpu_seconds']:,.1f} CPU-s "
        f"= {changed['cpu_seconds'] / full['cpu_seconds']:.1%} of the full run; unchanged re-run "
        f"{unchanged['cpu_seconds']:,.1f} CPU-s ({unchanged['cpu_seconds'] / full['cpu_seconds']:.1%})"
    )
    return figures


def same_records(a: Path, b: Path) -> tuple[int, int]:
    """(records, records that differ) between two outputs, by id (the id fixes the row)."""

    def load(folder: Path) -> dict[str, bytes]:
        found = {}
        for shard in sorted(folder.glob("articles-*.jsonl")):
            for line in shard.read_bytes().splitlines():
                found[json.loads(line)["id"]] = line
        return found

    left, right = load(a), load(b)
    differ = sum(1 for key in left.keys() | right.keys() if left.get(key) != right.get(key))
    return len(left), differ


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--changed-share", type=float, default=0.01)
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old runner")
    parser.add_argument(
        "--new-rev", default="", help="git revision of the engine (default: this worktree's files as they are)"
    )
    parser.add_argument("--only", default="old,new", help="old,new")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus and outputs")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    say(f"engine benchmark: {args.pages:,} mixed pages, --workers {args.workers}, {os.cpu_count()} cores")
    corpus = ensure_corpus(args.pages, args.seed)
    figures: dict[str, object] = {"pages": args.pages, "workers": args.workers}
    which = [w.strip() for w in args.only.split(",") if w.strip()]
    if "old" in which:
        figures["old"] = measure("old", export_old_runner(args.old_rev), corpus, args.workers, args.changed_share, 1)
    if "new" in which:
        code = export_old_runner(args.new_rev) if args.new_rev else ROOT
        figures["new"] = measure("new", code, corpus, args.workers, args.changed_share, 1)
    if {"old", "new"} <= set(which):
        records, differ = same_records(OUT / "engine-bench-old", OUT / "engine-bench-new")
        figures["records_differing"] = differ
        old, new = figures["old"], figures["new"]
        assert isinstance(old, dict) and isinstance(new, dict)
        say(
            f"new/old articles per CPU-s: {new['articles_per_cpu_second'] / old['articles_per_cpu_second']:.2f}; "
            f"records that differ: {differ:,} of {records:,} (the identity rule: a title alone no longer merges)"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    if not args.keep:
        shutil.rmtree(corpus, ignore_errors=True)
        for name in ("old", "new"):
            shutil.rmtree(OUT / f"engine-bench-{name}", ignore_errors=True)


if __name__ == "__main__":
    main()
