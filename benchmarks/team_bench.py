"""20 annotators submitting at once: the managed Label Studio on SQLite vs PostgreSQL (issue 12).

    .venv/bin/python benchmarks/team_bench.py [--annotators 20] [--seconds 120] [--db sqlite,postgresql]

For each database it starts its own managed server (temp data dir, free port, 127.0.0.1 only),
pushes fictional tasks, signs up N annotators through the invite link, then runs N threads -
one per annotator, each with its own token - that submit annotations as fast as the server
answers for a fixed time (bounded: every loop checks the deadline, every request has a
timeout). Prints, per database: submissions/s, p50/p95 latency, errors by kind, CPU-seconds of
the server process tree and its peak RSS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from newsstance.ids import text_sha256
from newsstance.studio.client import Connection, invite_user
from newsstance.studio.push import push_articles
from newsstance.studio.server import ManagedServer, free_port

PEOPLE = ["Ana Ruiz", "Tomas Eberly", "Ilse Marrow", "Brann Hollis", "Oda Venn", "Kofi Lindqvist"]
PLACES = ["Portvale", "Norvand", "Caldmere", "Kelmar", "Tidewick", "Marlow Heights"]


def article(index: int) -> dict[str, Any]:
    person, place = PEOPLE[index % len(PEOPLE)], PLACES[(index * 5) % len(PLACES)]
    text = f"{person} opened the {place} harbour fair on day {index}. Traders from {place} praised the council."
    article_id = text_sha256(f"team-bench-{index}")[:16]
    return {
        "id": article_id,
        "title": f"Fair {index} in {place}",
        "text": text,
        "text_sha256": text_sha256(text),
        "source": "The Fictional Gazette",
        "url": f"https://gazette.example/{article_id}",
    }


def annotation(text: str) -> list[dict[str, Any]]:
    person = text.split(" opened ")[0]
    return [
        {
            "id": "r1",
            "from_name": "entities",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 0, "end": len(person), "text": person, "labels": ["PERSON"]},
        }
    ]


def server_tree_cpu_rss(pid: int) -> tuple[float, int]:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        return cpu, sum(p.memory_info().rss for p in procs)
    except psutil.NoSuchProcess:
        return 0.0, 0


def run(db: str, annotators: int, seconds: float, tasks_per_annotator: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"team-bench-{db}-"))
    pg_root = Path(tempfile.mkdtemp(prefix="team-bench-pg-")) if db == "postgresql" else None
    server = ManagedServer(work / "ls", free_port(), db=db, pg_root=pg_root)  # type: ignore[arg-type]
    started = time.perf_counter()
    server.start()
    print(f"[{db}] server up in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    try:
        admin = Connection(url=server.url, api_key=server.api_key, kind="legacy", managed=True)
        articles = [article(i) for i in range(annotators * tasks_per_annotator)]
        pushed = push_articles(
            admin, articles, project="team bench", overlap=annotators, state_path=work / "push.json", progress=False
        )
        texts = {pushed.task_ids[a["id"]]: a["text"] for a in articles}
        tokens = []
        for index in range(annotators):
            email = f"annotator{index}-{uuid.uuid4().hex[:6]}@newsstance.test"
            tokens.append(invite_user(admin, email, f"pw-{uuid.uuid4().hex}").api_key)
        task_ids = sorted(texts)
        record = server.process()
        assert record is not None
        cpu_before, _ = server_tree_cpu_rss(record.pid)
        pg_pids = []
        cluster = server.cluster()
        if cluster is not None:
            pid_file = cluster.data / "postmaster.pid"
            pg_pids = [int(pid_file.read_text().split()[0])]
        pg_cpu_before = sum(server_tree_cpu_rss(p)[0] for p in pg_pids)

        latencies: list[float] = []
        errors: Counter[str] = Counter()
        lock = threading.Lock()
        peak_rss = 0
        deadline = time.monotonic() + seconds

        def annotate(worker: int) -> None:
            mine = task_ids
            position = worker
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Token {tokens[worker]}"}, timeout=30
            ) as http:
                while time.monotonic() < deadline:
                    task_id = mine[position % len(mine)]
                    position += 1
                    body = {"result": annotation(texts[task_id]), "was_cancelled": False, "lead_time": 1.0}
                    t0 = time.perf_counter()
                    try:
                        response = http.post(f"/api/tasks/{task_id}/annotations/", json=body)
                        kind = None if response.status_code == 201 else f"HTTP {response.status_code}"
                        if kind and "locked" in response.text.lower():
                            kind += " database is locked"
                    except httpx.HTTPError as exc:
                        kind = type(exc).__name__
                    elapsed = time.perf_counter() - t0
                    with lock:
                        if kind is None:
                            latencies.append(elapsed)
                        else:
                            errors[kind] += 1

        threads = [threading.Thread(target=annotate, args=(i,), daemon=True) for i in range(annotators)]
        t_start = time.perf_counter()
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            peak_rss = max(peak_rss, server_tree_cpu_rss(record.pid)[1])
            time.sleep(1)
            if time.monotonic() > deadline + 60:
                break
        wall = time.perf_counter() - t_start
        cpu_after, _ = server_tree_cpu_rss(record.pid)
        pg_cpu = sum(server_tree_cpu_rss(p)[0] for p in pg_pids) - pg_cpu_before
        log_locked = server.log_path.read_text(errors="replace").count("database is locked")
        latencies.sort()
        return {
            "db": db,
            "annotators": annotators,
            "seconds": round(wall, 1),
            "submissions": len(latencies),
            "per_second": round(len(latencies) / wall, 2),
            "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
            "errors": dict(errors),
            "locked_in_log": log_locked,
            "server_cpu_s": round(cpu_after - cpu_before, 1),
            "postgres_cpu_s": round(pg_cpu, 1) if pg_pids else None,
            "server_peak_rss_mb": round(peak_rss / 2**20),
        }
    finally:
        server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        if pg_root is not None:
            shutil.rmtree(pg_root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--tasks-per-annotator", type=int, default=10)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = [run(db, args.annotators, args.seconds, args.tasks_per_annotator) for db in args.db.split(",")]
    print(
        "| db | submissions/s | p50 ms | p95 ms | errors | 'database is locked' in log | server CPU s | PostgreSQL CPU s | server peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in row["errors"].items()) or "0"
        print(
            f"| {row['db']} | {row['per_second']} ({row['submissions']} in {row['seconds']} s) | {row['p50_ms']} | "
            f"{row['p95_ms']} | {errors} | {row['locked_in_log']} | {row['server_cpu_s']} | "
            f"{row['postgres_cpu_s'] if row['postgres_cpu_s'] is not None else '-'} | {row['server_peak_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
