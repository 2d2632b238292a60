"""The normalize engine (datatrove stages) against the runner it replaced, on the same pages.

    python benchmarks/engine_bench.py --pages 100000 --workers 2 --keep
    python benchmarks/engine_bench.py --corpus benchmarks/out/mix-1000000-s0 --workers 2
    python benchmarks/engine_bench.py --pages 2000                     # a quick check

Generates (once, with --keep) a mixed corpus with `synth.py` (60% aggregator text, 20% HTML,
10% news-please JSON, 10% JSONL), or takes an already generated one (`--corpus`: the folder
holding `synth.json`, never deleted). Next to its `pages/` it builds (once; rebuilt only when
the share or page count changes) `pages-warc/`: the same pages with `--warc-share` of all pages
(default 0.10, HTML pages outside planted pairs) packed into gzipped WARC files (~1,000 HTTP 200
responses each, plus a few request, metadata, redirect, image and 404 records) and every other
file hard-linked from `pages/`. It exports the old runner's code from git (`--old-rev`, default:
main before the engine) and runs both as `newsstance normalize --workers N` child processes, one
after the other: the old runner on `pages/` (it cannot read WARC), the engine on `pages-warc/`
(on `pages/` with `--warc-share 0`). Figures:

- articles per CPU second (the whole process tree: stable on a shared machine) and wall time;
- peak memory of the process tree, sampled: summed RSS (pages shared after fork counted per
  process: an upper bound) and summed PSS (shared pages split between their processes);
- planted near-duplicate page pairs (J >= 0.8) found in one cluster, look-alike pairs merged
  (planted pages are never packed into WARC);
- articles from the WARC-packed pages in each run (old: from their loose `.html` files; engine:
  from the WARC records);
- a re-run after changing 1% of the inputs (chosen among the loose files, the same files in both
  runs: a WARC file is never edited: the worst case, every shard holds an edited input), and an
  unchanged re-run, as a share of the full run; then (engine) a re-run restoring those files, and
  one with as many new pages in a new crawl folder sorting last (other articles, generated with
  another seed: a crawl that grows by a day);
- the two outputs compared by id, over records from loose inputs only (a record's id derives
  from its provenance path, which for a packed page is the archive): ids on one side only, and
  records under the same id whose line differs, in all and outside `provenance` (the parser
  version in provenance differs on every record once the parser changed);
- for the engine: WARC records per CPU-second on the first `--warc-sample-files` WARC files
  alone, read only (`readers.warc.iter_warc`) and read + extracted (decode + HTML extraction),
  in a child process with the engine's code.

Prints figures and writes them as JSON (`--json`); asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

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


def existing_corpus(folder: Path) -> Path:
    """A corpus folder `synth.py` finished (it writes `synth.json` last)."""
    if not (folder / "pages").is_dir():
        raise SystemExit(f"--corpus {folder}: no pages/ folder there (a folder written by synth.py is expected)")
    if not (folder / "synth.json").exists():
        raise SystemExit(f"--corpus {folder}: no synth.json yet (still being generated?)")
    return folder


@dataclass
class Inputs:
    """What each runner reads: the old runner `pages/`, the engine `engine_dir`."""

    corpus: Path
    pages: int
    loose: list[str]  # page paths that are files in both folders (the WARC-packed pages are not)
    packed: frozenset[str]  # page paths packed into WARC files in the engine's folder
    engine_dir: Path
    warc_files: list[dict]  # {"path": relative to engine_dir, "records": {kind: count}}


def prepare_inputs(corpus: Path, warc_share: float, records_per_file: int) -> Inputs:
    summary = json.loads((corpus / "synth.json").read_text(encoding="utf-8"))
    rels = synth.page_paths(summary)
    if warc_share <= 0:
        return Inputs(corpus, summary["pages"], rels, frozenset(), corpus / "pages", [])
    start = time.perf_counter()
    view = synth.warc_view(corpus, warc_share, records_per_file)
    packed = frozenset(view["packed"])
    records = view["records"]
    others = ", ".join(f"{count:,} {kind}" for kind, count in records.items() if kind != "page")
    say(
        f"WARC view {corpus / synth.WARC_VIEW}: {len(packed):,} of {summary['pages']:,} pages (HTML, not planted) "
        f"in {len(view['warc_files'])} gzipped WARC file(s) as HTTP 200 responses, plus {others}; "
        f"{view['linked']:,} files hard-linked; "
        + (
            f"built in {view['seconds']:.1f}s (links {view['link_seconds']:.1f}s)"
            if view["built"]
            else f"reused ({time.perf_counter() - start:.1f}s)"
        )
    )
    if view["built"]:
        check_warc_view(corpus / synth.WARC_VIEW, view)
    loose = [rel for rel in rels if rel not in packed]
    return Inputs(corpus, summary["pages"], loose, packed, corpus / synth.WARC_VIEW, view["warc_files"])


def check_warc_view(view: Path, description: dict) -> None:
    """Read the new WARC files back: every record with fastwarc (counts by type and status must
    match what was written), the first file with warcio too when it is installed."""
    from fastwarc.warc import ArchiveIterator

    start = time.process_time()
    found: Counter[str] = Counter()
    for entry in description["warc_files"]:
        with (view / entry["path"]).open("rb") as handle:
            for record in ArchiveIterator(handle, parse_http=True, auto_decode="all"):
                status = record.http_headers.status_code if record.http_headers is not None else None
                kind = str(record.record_type)
                found[f"{kind}:{status}" if status else kind] += 1
                record.reader.read()
    written = Counter(description["records"])
    expected = Counter(
        {
            "warcinfo": written["warcinfo"],
            "request": written["request"],
            "metadata": written["metadata"],
            "response:200": written["page"] + written["image"],
            "response:301": written["redirect"],
            "response:404": written["http_404"],
        }
    )
    expected = +expected
    verdict = "as written" if found == expected else f"DIFFERENT from what was written {dict(expected)}"
    seconds = time.process_time() - start
    say(f"  fastwarc read {sum(found.values()):,} records in {seconds:.1f} CPU-s: {dict(found)} {verdict}")
    try:
        from warcio.archiveiterator import ArchiveIterator as WarcioIterator
    except ImportError:
        say("  warcio not installed: skipped its check")
        return
    first = description["warc_files"][0]
    with (view / first["path"]).open("rb") as handle:
        count = sum(1 for record in WarcioIterator(handle) if record.content_stream().read() is not None)
    expected_count = sum(first["records"].values())
    verdict = "as written" if count == expected_count else f"DIFFERENT: {expected_count:,} written"
    say(f"  warcio read {count:,} records of {first['path']}: {verdict}")


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


def normalize(code: Path, inputs: list[Path], out: Path, workers: int, log: Path, root: Path | None = None) -> dict:
    """One `newsstance normalize` child process with the code under `code`: CPU, wall, peak RSS and PSS."""
    env = {**os.environ, "PYTHONPATH": str(code / "scripts")}
    command = [sys.executable, "-m", "newsstance.cli", "normalize", *map(str, inputs), "--out", str(out)]
    command += ["--crawl-time", CRAWL_TIME, "--workers", str(workers), "-q"]
    if root is not None:
        command += ["--corpus-root", str(root)]
    with log.open("w") as err:
        cpu_before = nb._children_cpu()
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        with nb.TreeRss(process.pid) as memory:
            code_ = process.wait()
        wall = time.perf_counter() - start
    cpu = nb._children_cpu() - cpu_before
    if code_ != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"normalize failed (exit {code_}), see {log}:\n" + "\n".join(tail))
    return {
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "peak_rss_mb": memory.peak / 2**20,
        "peak_pss_mb": memory.peak_pss / 2**20,
    }


def change_inputs(folder: Path, rels: list[str], count: int, seed: int) -> dict[Path, bytes]:
    """Edit `count` of the files `rels` under `folder` (a sentence added to the text); returns the
    originals. Written in place, so a file hard-linked into the WARC view changes there too."""
    chosen = random.Random(seed).sample(rels, min(count, len(rels)))
    originals = {}
    for rel in chosen:
        path = folder / rel
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


NEW_CRAWL_DIR = "zz-new-crawl"  # sorts after the corpus's numbered folders, as a new day's crawl does


def add_new_crawl(folder: Path, count: int, seed: int) -> Path:
    """`count` new mixed pages (generated once with another seed: other articles, no duplicates
    of the corpus) hard-linked into `folder/zz-new-crawl/`; returns that folder (removed afterwards)."""
    source = OUT / f"newcrawl-{count}-s{seed}"
    summary = source / "synth.json"
    if not (summary.exists() and json.loads(summary.read_text()).get("pages") == count):
        shutil.rmtree(source, ignore_errors=True)
        synth.generate(source, count, "mix", seed, progress=False)
    target = folder / NEW_CRAWL_DIR
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted((source / "pages").rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source / "pages")
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)
    return target


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def scan_output(out: Path, packed: frozenset[str]) -> tuple[int, int, np.ndarray]:
    """(articles from WARC-packed pages, of which from WARC files, one row per other record:
    digests of its id, of its line, and of its fields outside `provenance`).

    A packed page's record comes from its loose `.html` (old runner: provenance path in `packed`)
    or from a WARC record (engine: a `warc_record_id` in provenance). Digests keep the comparison
    at 24 bytes per record, whatever the corpus size."""
    from_packed = from_warc = 0
    keys = array("Q")
    for shard in sorted(out.glob("articles*.jsonl")):
        with shard.open("rb") as handle:
            for line in handle:
                line = line.rstrip(b"\n")
                record = json.loads(line)
                provenance = record.pop("provenance")
                warc = provenance.get("warc_record_id") is not None
                if warc or provenance["path"] in packed:
                    from_packed += 1
                    from_warc += warc
                    continue
                fields = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
                keys.extend((_digest(record["id"].encode()), _digest(line), _digest(fields)))
    return from_packed, from_warc, np.frombuffer(keys, dtype=np.uint64).reshape(-1, 3)


def compare_records(left: np.ndarray, right: np.ndarray) -> dict[str, int]:
    """Ids on one side only; ids on both sides whose lines differ; of those, how many differ
    outside `provenance` (where parser_version and the provenance fields a parser added differ
    on every record)."""
    common, at_left, at_right = np.intersect1d(left[:, 0], right[:, 0], return_indices=True)
    return {
        "records_old": len(left),
        "records_new": len(right),
        "ids_on_one_side": (len(left) - len(common)) + (len(right) - len(common)),
        "same_id_other_bytes": int(np.count_nonzero(left[at_left, 1] != right[at_right, 1])),
        "same_id_other_fields": int(np.count_nonzero(left[at_left, 2] != right[at_right, 2])),
    }


def measure(
    name: str, code: Path, folder: Path, inputs: Inputs, workers: int, share: float, seed: int, reruns: bool = True
) -> tuple[dict, np.ndarray]:
    out = OUT / f"engine-bench-{name}-{inputs.corpus.name}"  # per corpus: runs on two corpora never meet
    shutil.rmtree(out, ignore_errors=True)
    full = normalize(code, [folder], out, workers, out.with_name(out.name + ".log"))
    counts = nb.count_output(out)
    planted = nb.planted_in_output(inputs.corpus, counts.pop("_mains"))
    from_packed, from_warc, keys = scan_output(out, inputs.packed)
    figures = {
        **full,
        "input": str(folder),
        "articles": counts["articles"],
        "duplicates": counts["duplicates"],
        "articles_per_cpu_second": counts["articles"] / full["cpu_seconds"],
        "articles_from_warc_packed_pages": from_packed,
        "articles_from_warc_files": from_warc,
        **planted,
    }
    report_full(name, folder, inputs, counts, full, figures, planted)
    if not reruns:
        return figures, keys
    unchanged = normalize(code, [folder], out, workers, out.with_name(out.name + "-unchanged.log"))
    originals = change_inputs(folder, inputs.loose, max(1, round(inputs.pages * share)), seed)
    try:
        changed = normalize(code, [folder], out, workers, out.with_name(out.name + "-changed.log"))
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
    # the edited files restored (another 1% changed: it also gives the commit its shard fingerprints)
    restored = normalize(code, [folder], out, workers, out.with_name(out.name + "-restored.log"))
    new_crawl = add_new_crawl(folder, len(originals), seed + 1)
    try:
        grown = normalize(code, [folder], out, workers, out.with_name(out.name + "-grown.log"))
    finally:
        shutil.rmtree(new_crawl, ignore_errors=True)
    figures |= {
        "rerun_restored_cpu_seconds": restored["cpu_seconds"],
        "rerun_new_crawl_cpu_seconds": grown["cpu_seconds"],
        "rerun_new_crawl_files": len(originals),
        "rerun_unchanged_cpu_seconds": unchanged["cpu_seconds"],
        "rerun_changed_cpu_seconds": changed["cpu_seconds"],
        "rerun_changed_files": len(originals),
        "rerun_changed_peak_rss_mb": changed["peak_rss_mb"],
        "rerun_changed_peak_pss_mb": changed["peak_pss_mb"],
    }
    say(
        f"        re-run, {len(originals):,} loose inputs ({share:.0%} of pages) changed: "
        f"{changed['cpu_seconds']:,.1f} CPU-s = {changed['cpu_seconds'] / full['cpu_seconds']:.1%} of the full run "
        f"(peak RSS {changed['peak_rss_mb']:,.0f} MB, PSS {changed['peak_pss_mb']:,.0f} MB); unchanged re-run "
        f"{unchanged['cpu_seconds']:,.1f} CPU-s ({unchanged['cpu_seconds'] / full['cpu_seconds']:.1%})"
    )
    say(
        f"        re-run restoring those files: {restored['cpu_seconds']:,.1f} CPU-s "
        f"({restored['cpu_seconds'] / full['cpu_seconds']:.1%}); re-run with {len(originals):,} new pages in a new "
        f"crawl folder ({NEW_CRAWL_DIR}/, sorting last): {grown['cpu_seconds']:,.1f} CPU-s "
        f"= {grown['cpu_seconds'] / full['cpu_seconds']:.1%} of the full run"
    )
    return figures, keys


def report_full(
    name: str, folder: Path, inputs: Inputs, counts: dict, full: dict, figures: dict, planted: dict
) -> None:
    recall = planted["near_high_merged"] / planted["near_high"] if planted["near_high"] else float("nan")
    say(
        f"{name:>6}: {counts['articles']:,} articles ({counts['duplicates']:,} duplicate_of) from "
        f"{folder.relative_to(inputs.corpus)}/ in {full['cpu_seconds']:,.1f} CPU-s = "
        f"{figures['articles_per_cpu_second']:,.0f} articles/CPU-s (wall {full['wall_seconds']:,.0f}s); "
        f"peak RSS {full['peak_rss_mb']:,.0f} MB, peak PSS {full['peak_pss_mb']:,.0f} MB (process tree, summed)"
    )
    if inputs.packed:
        say(
            f"        WARC-packed pages ({len(inputs.packed):,}): {figures['articles_from_warc_packed_pages']:,} articles, "
            f"{figures['articles_from_warc_files']:,} of them from WARC records (the rest from the pages' loose .html files)"
        )
    say(
        f"        planted near-duplicates (J>=0.8) merged {planted['near_high_merged']}/{planted['near_high']} "
        f"({recall:.1%}); look-alikes merged {planted['lookalike_merged']}/{planted['lookalike']}"
        + (f"; planted pairs not found: {planted['unmatched']}" if planted["unmatched"] else "")
    )


WARC_FIGURES = """
import json, sys, time
from newsstance.normalize.decode import decode_bytes
from newsstance.normalize.html_extract import parse_html
from newsstance.normalize.readers.warc import WarcPage, iter_warc

def run(extract, limit=None):
    records = pages = 0
    for path in sys.argv[1:]:
        with open(path, "rb") as handle:
            for item in iter_warc(handle, 1 << 26):
                records += 1
                if isinstance(item, WarcPage):
                    pages += 1
                    if extract:
                        parse_html(decode_bytes(item.body, item.charset).text, page_url=item.target_uri)
                if limit is not None and records >= limit:
                    return records, pages
    return records, pages

run(True, 20)  # warm-up: imports, the extractor's first-call setup, the page cache
start = time.process_time()
records, pages = run(False)
read_only = time.process_time() - start
start = time.process_time()
run(True)
extracted = time.process_time() - start
print(json.dumps({"records": records, "pages": pages, "read_cpu_seconds": read_only, "extract_cpu_seconds": extracted}))
"""


def warc_figures(code: Path, inputs: Inputs, files: int) -> dict:
    """Records per CPU-second on the first `files` WARC files alone, in a child process with the
    engine's code: read only (iter_warc), and read + decoded + HTML-extracted."""
    chosen = inputs.warc_files[:files]
    paths = [str(inputs.engine_dir / entry["path"]) for entry in chosen]
    env = {**os.environ, "PYTHONPATH": str(code / "scripts")}
    done = subprocess.run(
        [sys.executable, "-c", WARC_FIGURES, *paths], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"WARC figures failed: {done.stderr.strip()[-400:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["files"] = len(chosen)
    figures["read_records_per_cpu_second"] = figures["records"] / max(figures["read_cpu_seconds"], 1e-9)
    figures["extract_records_per_cpu_second"] = figures["records"] / max(figures["extract_cpu_seconds"], 1e-9)
    say(
        f"        WARC alone ({len(chosen)} file(s), {figures['records']:,} records, {figures['pages']:,} HTML pages, "
        f"one process): read {figures['read_records_per_cpu_second']:,.0f} records/CPU-s (iter_warc); "
        f"read+extracted {figures['extract_records_per_cpu_second']:,.1f} records/CPU-s "
        f"({figures['extract_cpu_seconds']:.1f} CPU-s; decode + HTML extraction)"
    )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument(
        "--corpus", type=Path, help="an already generated corpus folder (holds synth.json; --pages is then ignored)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--changed-share", type=float, default=0.01)
    parser.add_argument(
        "--warc-share",
        type=float,
        default=0.10,
        help="share of all pages packed into WARC files for the engine (HTML pages; 0: the engine reads pages/)",
    )
    parser.add_argument("--records-per-warc", type=int, default=1000, help="HTML responses per WARC file")
    parser.add_argument(
        "--warc-sample-files", type=int, default=2, help="WARC files read for the records-per-CPU-second figures"
    )
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old runner")
    parser.add_argument(
        "--new-rev", default="", help="git revision of the engine (default: this worktree's files as they are)"
    )
    parser.add_argument("--only", default="old,new", help="old,new")
    parser.add_argument(
        "--reruns", default="old,new", help="systems whose re-runs (unchanged, 1%% changed) are measured"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus and outputs")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not 0 <= args.warc_share < 1:
        parser.error("--warc-share is a share of the pages: 0 <= share < 1")
    OUT.mkdir(parents=True, exist_ok=True)
    corpus = existing_corpus(args.corpus.resolve()) if args.corpus else ensure_corpus(args.pages, args.seed)
    inputs = prepare_inputs(corpus, args.warc_share, args.records_per_warc)
    say(
        f"engine benchmark: {inputs.pages:,} mixed pages ({corpus}), --workers {args.workers}, "
        f"{os.cpu_count()} cores; engine reads {inputs.engine_dir.name}/"
    )
    figures: dict[str, object] = {
        "pages": inputs.pages,
        "workers": args.workers,
        "corpus": str(corpus),
        "warc_share": args.warc_share,
        "warc_packed_pages": len(inputs.packed),
        "warc_files": len(inputs.warc_files),
    }
    which = [w.strip() for w in args.only.split(",") if w.strip()]
    keys: dict[str, np.ndarray] = {}
    if "old" in which:
        code = export_old_runner(args.old_rev)
        figures["old"], keys["old"] = measure(
            "old", code, corpus / "pages", inputs, args.workers, args.changed_share, 1, "old" in args.reruns
        )
    if "new" in which:
        code = export_old_runner(args.new_rev) if args.new_rev else ROOT
        figures["new"], keys["new"] = measure(
            "new", code, inputs.engine_dir, inputs, args.workers, args.changed_share, 1, "new" in args.reruns
        )
        if inputs.warc_files and args.warc_sample_files > 0:
            figures["warc_alone"] = warc_figures(code, inputs, args.warc_sample_files)
    if {"old", "new"} <= set(which):
        compared = compare_records(keys["old"], keys["new"])
        figures["records"] = compared
        old, new = figures["old"], figures["new"]
        assert isinstance(old, dict) and isinstance(new, dict)
        scope = " (records of WARC-packed pages left out: their ids differ)" if inputs.packed else ""
        say(f"new/old articles per CPU-s: {new['articles_per_cpu_second'] / old['articles_per_cpu_second']:.2f}")
        say(
            f"records from loose inputs{scope}: old {compared['records_old']:,}, new {compared['records_new']:,}; "
            f"ids on one side only {compared['ids_on_one_side']:,}; same id, other bytes "
            f"{compared['same_id_other_bytes']:,}, of which other fields outside provenance "
            f"{compared['same_id_other_fields']:,}"
        )
    if args.json:
        partial = args.json.with_name(args.json.name + ".tmp")
        partial.write_text(json.dumps(figures, indent=1) + "\n")
        partial.replace(args.json)
    if not args.keep:
        if args.corpus is None:  # a corpus given with --corpus is never deleted (nor its WARC view)
            shutil.rmtree(corpus, ignore_errors=True)
        for name in which:  # only what this run wrote
            shutil.rmtree(OUT / f"engine-bench-{name}-{corpus.name}", ignore_errors=True)


if __name__ == "__main__":
    main()
