"""Memory of `newsstance normalize`'s planning on a big corpus: the submitting process's peak RSS
while it lists, stats and plans every input, up to the moment the extract workers fork.

    python benchmarks/plan_memory.py benchmarks/out/mix-1000000-s0/pages-warc
    python benchmarks/plan_memory.py CORPUS --code benchmarks/out/code-54f3576   # an exported revision

Starts a real first run into a temporary folder and stops it once the workers exist (planning
is what grows with the number of inputs; the workers hold one task at a time). Prints figures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--code", type=Path, default=ROOT, help="a checkout or exported revision (holds scripts/)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="plan-memory-"))
    env = {**os.environ, "PYTHONPATH": str(args.code / "scripts")}
    command = [sys.executable, "-m", "newsstance.cli", "normalize", str(args.corpus), "--out", str(out / "out")]
    command += ["--crawl-time", "2025-03-14T12:00:00Z", "--workers", str(args.workers), "-q"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = psutil.Process(process.pid)
    peak = 0
    try:
        while process.poll() is None:
            peak = max(peak, proc.memory_info().rss)
            if proc.children():
                break
            time.sleep(0.2)
        cpu = proc.cpu_times()
        print(
            f"{args.code}: {args.corpus}: planning peak RSS {peak / 2**20:,.0f} MB (submitting process), "
            f"{cpu.user + cpu.system:,.1f} CPU-s, {time.perf_counter() - started:,.0f} s wall"
        )
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
