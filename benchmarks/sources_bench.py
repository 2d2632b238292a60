"""Figures for normalize's inputs (issues 10 and 11): WARC throughput and memory on big files.

    python benchmarks/sources_bench.py                          # both sections, default sizes
    python benchmarks/sources_bench.py --only warc --records 20000 --extract 400
    python benchmarks/sources_bench.py --only memory --sizes-mb 20,50,100,200

`warc`: a synthetic gzipped WARC (synth.py's fictional HTML pages as 200 responses, plus
redirects, images, request and metadata records) written with warcio, then read by
- fastwarc (`ArchiveIterator`, payload read) and warcio (`ArchiveIterator`, `content_stream`):
  records per CPU-second, read only;
- `readers.warc.iter_warc` (fastwarc + our classification and limits);
- read + extracted: the first `--extract` records through decode and the HTML reader, once fed
  by fastwarc and once by warcio: records per CPU-second;
- with `--end-to-end`: `newsstance normalize` over the whole archive in a child process
  (records per CPU-second, peak RSS).
`memory`: one text file (a title and paragraphs: one article) and one JSON Lines file of
news-please records per size, each normalised by `newsstance normalize --max-bytes <above the
size>` in a child process: peak RSS (ru_maxrss of the child), its multiple of the file size
over the interpreter baseline (a tiny input), and CPU seconds.
Prints figures; asserts nothing. Generated files go to `benchmarks/out/sources/` (git-ignored).
Needs the `bench` extra (warcio).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth  # the generator next to this script

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "sources"
CRAWL_TIME = "2026-03-01T00:00:00Z"


def say(line: str) -> None:
    print(line, flush=True)


def cpu(function: Callable[[], int]) -> tuple[int, float]:
    start = time.process_time()
    count = function()
    return count, time.process_time() - start


# ---------------------------------------------------------------- WARC


def html_pages(count: int, seed: int = 0) -> Iterator[bytes]:
    rng = random.Random(seed)
    writer = synth.Writer(synth.Lexicon.build(seed), rng)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for index in range(count):
        article = writer.article(paragraphs=(3, 7))
        most_read = [writer.title(writer.lex.topics[index % len(writer.lex.topics)]) for _ in range(3)]
        yield synth.html_page(article, start + timedelta(minutes=index), most_read).encode()


def build_warc(path: Path, records: int) -> dict[str, int]:
    """About `records` records: 80% HTML responses, 7% redirects, 3% images, 5% requests, 5% metadata."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    kinds: dict[str, int] = {}
    pages = html_pages(records)
    rng = random.Random(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for index in range(records):
            uri = f"https://quaytimes.example/story/{index}"
            roll = rng.random()
            if roll < 0.80:
                kind, status, headers, body = (
                    "html",
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8"), ("Date", "Tue, 10 Mar 2026 08:00:00 GMT")],
                    next(pages),
                )
            elif roll < 0.87:
                kind, status, headers, body = "redirect", "301 Moved Permanently", [("Location", uri + "/")], b""
            elif roll < 0.90:
                kind, status, headers, body = "image", "200 OK", [("Content-Type", "image/png")], b"\x89PNG" * 200
            elif roll < 0.95:
                kind = "request"
                request = StatusAndHeaders(f"GET /story/{index} HTTP/1.1", [("Host", "quaytimes.example")])
                writer.write_record(writer.create_warc_record(uri, "request", http_headers=request))
                kinds[kind] = kinds.get(kind, 0) + 1
                continue
            else:
                kind = "metadata"
                record = writer.create_warc_record(uri, "metadata", payload=io.BytesIO(b"fetchTimeMs: 41\r\n"))
                writer.write_record(record)
                kinds[kind] = kinds.get(kind, 0) + 1
                continue
            http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http))
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def read_fastwarc(path: Path, limit: int | None = None) -> Iterator[tuple[str, int | None, str | None, bytes]]:
    from fastwarc.warc import ArchiveIterator

    for count, record in enumerate(ArchiveIterator(str(path), parse_http=True, auto_decode="all")):
        if limit is not None and count >= limit:
            return
        status = record.http_headers.status_code if record.http_headers is not None else None
        yield str(record.record_type), status, record.http_content_type, record.reader.read()


def read_warcio(path: Path, limit: int | None = None) -> Iterator[tuple[str, int | None, str | None, bytes]]:
    from warcio.archiveiterator import ArchiveIterator

    with path.open("rb") as handle:
        for count, record in enumerate(ArchiveIterator(handle)):
            if limit is not None and count >= limit:
                return
            status = None
            content_type = None
            if record.http_headers is not None and record.rec_type == "response":
                status = int(record.http_headers.get_statuscode() or 0)
                content_type = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip()
            yield record.rec_type, status, content_type, record.content_stream().read()


def extract_pages(records: Iterator[tuple[str, int | None, str | None, bytes]]) -> int:
    from newsstance.normalize.decode import decode_bytes
    from newsstance.normalize.readers.html import parse_html

    count = 0
    for kind, status, content_type, body in records:
        count += 1
        if kind == "response" and status == 200 and content_type == "text/html":
            parse_html(decode_bytes(body).text)
    return count


def warc_section(records: int, extract: int, end_to_end: bool) -> None:
    from newsstance.normalize.readers.warc import iter_warc

    path = OUT / f"synthetic-{records}.warc.gz"
    if not path.exists():
        say(f"writing {path.relative_to(ROOT)} ...")
        kinds = build_warc(path, records)
        say(f"  records by kind: {json.dumps(kinds, sort_keys=True)}")
    size = path.stat().st_size
    say(f"WARC: {records:,} records, {size / 1e6:.1f} MB gzipped")
    for name, reader in (("fastwarc 2.x", read_fastwarc), ("warcio", read_warcio)):
        count, seconds = cpu(lambda reader=reader: sum(1 for _ in reader(path)))
        say(f"  read only      {name:<14} {count / seconds:>10,.0f} records/CPU-s  ({count:,} in {seconds:.2f} CPU-s)")

    def ours() -> int:
        with path.open("rb") as handle:
            return sum(1 for _ in iter_warc(handle, 20 * 1024 * 1024))

    count, seconds = cpu(ours)
    say(f"  read only      {'iter_warc':<14} {count / seconds:>10,.0f} records/CPU-s  (fastwarc + classification)")
    if end_to_end:
        folder = OUT / f"warc-e2e-{records}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if not target.exists():
            os.link(path, target)
        peak, seconds = run_child(folder, OUT / "warc-e2e-out", 20 * 1024 * 1024)
        manifest = json.loads((OUT / "warc-e2e-out" / "manifest.json").read_text(encoding="utf-8"))
        articles = manifest["summary"]["articles"]
        say(
            f"  normalize end to end: {articles:,} articles from {records:,} records in {seconds:.1f} CPU-s "
            f"({records / seconds:,.1f} records/CPU-s), peak RSS {peak:.0f} MB"
        )
        shutil.rmtree(OUT / "warc-e2e-out", ignore_errors=True)
    extract_pages(read_fastwarc(path, 20))  # warm-up: imports and trafilatura's first-call setup
    for name, reader in (("fastwarc 2.x", read_fastwarc), ("warcio", read_warcio)):
        count, seconds = cpu(lambda reader=reader: extract_pages(reader(path, extract)))
        say(
            f"  read+extracted {name:<14} {count / seconds:>10,.1f} records/CPU-s  "
            f"({count:,} records, ~80% HTML, in {seconds:.2f} CPU-s)"
        )


# ---------------------------------------------------------------- memory


def write_text(path: Path, size: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mer", "vin", "dra", "sol", "ten", "qui", "bar", "ost", "el", "nor", "pi", "wen"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(3000)]

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize() + "."

    written = 0
    with path.open("w", encoding="utf-8") as handle:
        handle.write("Harbour board of Velmora approves the pier\n\n")
        while written < size:
            paragraph = " ".join(sentence() for _ in range(rng.randint(2, 6))) + "\n\n"
            handle.write(paragraph)
            written += len(paragraph)


def write_jsonl(path: Path, size: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    words = ["".join(rng.choice("aeioulmnrstvk") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    written = 0
    index = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < size:
            body = "\n".join(" ".join(rng.choice(words) for _ in range(60)) + "." for _ in range(5))
            record = {
                "title": f"Pier story {index} {rng.choice(words)}",
                "maintext": body,
                "url": f"https://quaytimes.example/{index}",
                "date_publish": "2026-03-10 08:45:00",
                "source_domain": "quaytimes.example",
                "language": "en",
            }
            line = json.dumps(record) + "\n"
            handle.write(line)
            written += len(line)
            index += 1


def run_child(folder: Path, out: Path, max_bytes: int) -> tuple[float, float]:
    """Peak RSS (MB) and CPU seconds of one `newsstance normalize` child process."""
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "newsstance.cli",
        "normalize",
        str(folder),
        "--out",
        str(out),
        "--max-bytes",
        str(max_bytes),
        "--crawl-time",
        CRAWL_TIME,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise SystemExit(f"normalize failed on {folder}: {error.strip()[-400:]}")
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def memory_section(sizes_mb: list[int]) -> None:
    tiny = OUT / "mem-tiny"
    tiny.mkdir(parents=True, exist_ok=True)
    (tiny / "a.txt").write_text("Tiny notice\n\nThe Velmora ferry runs on Sundays again from May.\n", encoding="utf-8")
    baseline, _ = run_child(tiny, OUT / "mem-out", 1 << 20)
    say(f"memory: baseline (tiny input) peak RSS {baseline:.0f} MB")
    say(f"  {'input':<18} {'size':>8} {'peak RSS':>10} {'(peak-base)/size':>17} {'CPU-s':>8}")
    for size_mb in sizes_mb:
        for kind, writer in (("text", write_text), ("jsonl", write_jsonl)):
            folder = OUT / f"mem-{kind}-{size_mb}"
            path = folder / f"big.{'txt' if kind == 'text' else 'jsonl'}"
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                writer(path, size_mb * 1_000_000)
            size = path.stat().st_size
            peak, seconds = run_child(folder, OUT / "mem-out", size + (1 << 20))
            say(
                f"  {kind + ' (' + str(size_mb) + ' MB)':<18} {size / 1e6:>6.0f}MB {peak:>8.0f}MB "
                f"{(peak - baseline) / (size / 1e6):>16.1f}x {seconds:>8.1f}"
            )
    shutil.rmtree(OUT / "mem-out", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="warc,memory", help="comma-separated sections: warc, memory")
    parser.add_argument("--records", type=int, default=10_000, help="records in the synthetic WARC")
    parser.add_argument("--extract", type=int, default=300, help="records read and extracted per reader")
    parser.add_argument(
        "--end-to-end", action="store_true", help="also `newsstance normalize` the whole WARC (CPU-s, peak RSS)"
    )
    parser.add_argument("--sizes-mb", default="20,50,200", help="file sizes for the memory section")
    args = parser.parse_args()
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := sections - {"warc", "memory"}:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    if "warc" in sections:
        warc_section(args.records, args.extract, args.end_to_end)
    if "memory" in sections:
        memory_section([int(s) for s in args.sizes_mb.split(",") if s.strip()])


if __name__ == "__main__":
    main()
