"""Incremental `studio pull` and streaming `studio import` (issue 12 / 11 figures).

    .venv/bin/python benchmarks/pull_bench.py [--n 10000] [--changed 100] [--import-sizes 2000,8000]

Pull section: starts its own Label Studio (copy of the cached migrated template, temp data dir),
imports N fictional annotated tasks (annotations inline, two regions and both document stances),
then times, client CPU-seconds and server CPU-seconds for:

- a full pull (`--full`: the whole export, raw copy, conversion);
- a pull with no change (task list filtered on `updated_at`: nothing exported);
- a pull after `--changed` annotations were updated through the API.

Targets (issue 12, on 10,000 tasks): the pull after 100 changes <= 10% of the full pull; the
pull with no change <= 5 s.

Import section: writes synthetic exports of each size in `--import-sizes` and runs
`newsstance studio import` on each in a fresh process, printing its peak RSS: with the export
streamed (ijson), memory grows with the records kept, not with the export's text.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from newsstance.studio.client import Connection
from newsstance.studio.pull import pull
from newsstance.studio.push import task_data
from newsstance.studio.server import ManagedServer, free_port
from studio_bench import fictional_articles


def annotation_result(text: str, rng: random.Random, dam: str = "favor") -> list[dict[str, Any]]:
    """Two non-overlapping word spans and both document stances."""
    words = [(i, i + len(w)) for i, w in _words(text)]
    picks = sorted(rng.sample(range(len(words)), 2))
    result = []
    for n, index in enumerate(picks):
        start, end = words[index]
        result.append(
            {
                "id": f"r{n}",
                "from_name": "entities",
                "to_name": "text",
                "type": "labels",
                "value": {"start": start, "end": end, "text": text[start:end], "labels": ["MISC"]},
            }
        )
    for target, value in (("tidewater_dam", dam), ("carbon_levy", "not_about")):
        result.append(
            {
                "id": f"d-{target}",
                "from_name": f"stance_{target}",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [value]},
            }
        )
    return result


def _words(text: str) -> list[tuple[int, str]]:
    out, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isalnum() and start is None:
            start = i
        elif not ch.isalnum() and start is not None:
            out.append((start, text[start:i]))
            start = None
    return out


def server_cpu(server: ManagedServer) -> float:
    pid = server.status().pid
    if pid is None:
        return 0.0
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def timed(label: str, server: ManagedServer, fn: Any) -> tuple[Any, float]:
    wall, cpu, scpu = time.perf_counter(), time.process_time(), server_cpu(server)
    out = fn()
    wall, cpu, scpu = time.perf_counter() - wall, time.process_time() - cpu, server_cpu(server) - scpu
    print(f"{label:<34} {wall:8.1f} s wall  {cpu:7.1f} CPU-s client  {scpu:7.1f} CPU-s server", flush=True)
    return out, wall


def pull_section(n: int, changed: int, work: Path) -> None:
    server = ManagedServer(work / "ls", free_port())
    server.start()
    try:
        conn = Connection(url=server.url, api_key=server.api_key, kind="legacy", managed=True)
        client = conn.client()
        from newsstance.scheme import load_scheme

        project = client.projects.create(title="pull-bench", label_config=load_scheme().label_config())
        rng = random.Random(3)
        articles = fictional_articles(n)
        started = time.perf_counter()
        for start in range(0, n, 1000):
            batch = [
                {
                    "data": task_data(a),
                    "annotations": [{"result": annotation_result(a["text"], rng), "ground_truth": False}],
                }
                for a in articles[start : start + 1000]
            ]
            client.projects.import_tasks(id=project.id, request=batch, return_task_ids=True)
        print(f"imported {n} annotated tasks in {time.perf_counter() - started:.1f} s", flush=True)

        def run(**options: Any) -> Any:
            return pull(
                conn,
                project="pull-bench",
                out=work / "ann" / "annotations.jsonl",
                state_path=work / "pull-state.json",
                articles_glob=str(work / "none-*.jsonl"),
                progress=False,
                **options,
            )

        full, full_s = timed(f"full pull ({n} tasks)", server, lambda: run(full=True))
        print(f"  {full.summary()}")
        quiet, quiet_s = timed("pull, no change", server, run)
        print(f"  {quiet.summary()}")
        ids = [t.model_dump()["id"] for t in client.tasks.list(project=project.id, fields="task_only", page_size=1000)]
        for task_id in rng.sample(ids, changed):
            task = client.tasks.get(str(task_id)).model_dump()
            annotation = task["annotations"][0]
            text = task["data"]["text"]
            client.annotations.update(id=annotation["id"], result=annotation_result(text, rng, dam="against"))
        step, step_s = timed(f"pull after {changed} changed", server, run)
        print(f"  {step.summary()}")
        print(
            f"RESULT n={n}: full {full_s:.1f} s; {changed} changed {step_s:.1f} s = {100 * step_s / full_s:.1f}% "
            f"of full (target <= 10%); no change {quiet_s:.1f} s (target <= 5 s)",
            flush=True,
        )
    finally:
        server.stop()


def synthetic_export(n: int, path: Path, repeat: int = 8) -> None:
    rng = random.Random(5)
    articles = fictional_articles(n, seed=11)
    with path.open("wb") as handle:
        handle.write(b"[")
        for index, article in enumerate(articles):
            # Long texts make the export large while the records stay the same size.
            text = " ".join([article["text"]] * repeat)
            article = {**article, "text": text, "text_sha256": __import__("hashlib").sha256(text.encode()).hexdigest()}
            task = {
                "id": index + 1,
                "project": 1,
                "data": task_data(article),
                "annotations": [
                    {
                        "id": index + 1,
                        "completed_by": 1,
                        "result": annotation_result(text, rng),
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": "2031-05-01T10:00:00Z",
                        "updated_at": "2031-05-01T10:00:00Z",
                        "lead_time": 3.0,
                    }
                ],
                "predictions": [],
            }
            handle.write((b"," if index else b"") + orjson.dumps(task))
        handle.write(b"]")


def import_section(sizes: list[int], work: Path, repeats: list[int]) -> None:
    # VmHWM, not ru_maxrss: Linux carries the parent's maxrss over fork+exec into the child.
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from newsstance.studio.pull import import_export\n"
        "t = time.process_time()\n"
        "r = import_export(Path(sys.argv[1]), out=Path(sys.argv[2]), progress=False)\n"
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
        "print(r.records, time.process_time() - t, hwm)\n"
    )
    for n, repeat in [(n, r) for n in sizes for r in repeats]:
        export = work / f"export-{n}-{repeat}.json"
        synthetic_export(n, export, repeat)
        out = work / f"imp-{n}-{repeat}" / "annotations.jsonl"
        env = {**os.environ, "NEWSSTANCE_STATE_DIR": str(work / "state")}
        done = subprocess.run(
            [sys.executable, "-c", code, str(export), str(out)], capture_output=True, text=True, env=env, check=True
        )
        records, cpu, rss_kb = done.stdout.split()
        size_mb = export.stat().st_size / 1e6
        print(
            f"import {n:>6} tasks, export {size_mb:7.1f} MB: {records} records, {float(cpu):6.1f} CPU-s, "
            f"peak RSS {int(rss_kb) / 1024:6.0f} MB",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--import-sizes", default="2000,8000")
    parser.add_argument("--skip-pull", action="store_true")
    parser.add_argument("--text-repeats", default="8,64", help="article text repeated k times (export size)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pull-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_pull:
            pull_section(args.n, args.changed, work)
        sizes = [int(s) for s in args.import_sizes.split(",") if s]
        if sizes:
            import_section(sizes, work, [int(r) for r in args.text_repeats.split(",")])
    print(f"benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
