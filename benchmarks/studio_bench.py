"""Push and pull through newsstance next to the bare Label Studio SDK, same payload, same run.

    .venv/bin/python benchmarks/studio_bench.py [--n 10000] [--batch-size 1000]

Starts its own Label Studio (a copy of the cached migrated template, temp data dir, free port),
generates N fictional articles, and prints seconds for:

- spaCy NER over the N texts (what pre-annotation costs by itself);
- bare SDK `import_tasks` of the tasks with inline predictions vs `push_articles` with the same
  predictions (precomputed, so the difference is our overhead: validation, state, bookkeeping);
- `push_articles` with live spaCy (NER of the next batch overlaps the import of this one) vs
  spaCy followed by the bare import;
- bare SDK `download_sync` JSON export of N annotated tasks vs `pull` (download, raw copy, users,
  conversion, span checks, schema validation, atomic writes), and a second, incremental `pull`.

Overhead target: <= 50% over the bare SDK for push and for pull.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from newsstance.ids import text_sha256
from newsstance.scheme import load_scheme
from newsstance.studio.client import Connection
from newsstance.studio.preannotate import Result, SpacyPreannotator
from newsstance.studio.pull import pull
from newsstance.studio.push import build_tasks, push_articles
from newsstance.studio.server import ManagedServer, free_port

FIRST = ["Ana", "Tomas", "Ilse", "Marek", "Odile", "Jonas", "Priya", "Kofi", "Lena", "Bram"]
LAST = ["Ruiz", "Eberly", "Marrow", "Castellan", "Vantorp", "Okafor", "Lindqvist", "Moreau"]
PLACES = ["Portvale", "Norvand", "Caldmere", "Kelmar", "Ostrava Bay", "Tidewick", "Marlow Heights"]
ORGS = ["Velt Energy", "the Farmers Union", "the Greens", "Harbour Authority", "Caldmere Gazette"]
TEMPLATES = [
    "{p} of {g} said on {d} that the Tidewater Dam would reshape the {g2} valley.",
    "Critics at {o} called the carbon levy a tax on workers, according to {p}.",
    "The council of {g} met {o} to discuss flood defences near {g2}.",
    "{p} told reporters in {g} that {o} had not been consulted about the levy.",
    "Residents of {g2} marched to the offices of {o} 🙂 after the vote.",
]
DAYS = ["Monday", "Tuesday", "Friday", "Sunday"]


def fictional_articles(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    articles = []
    for index in range(n):
        sentences = []
        for _ in range(rng.randint(3, 5)):
            sentences.append(
                rng.choice(TEMPLATES).format(
                    p=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    g=rng.choice(PLACES),
                    g2=rng.choice(PLACES),
                    o=rng.choice(ORGS),
                    d=rng.choice(DAYS),
                )
            )
        text = " ".join(sentences)
        article_id = text_sha256(f"bench-{index}")[:16]
        articles.append(
            {
                "id": article_id,
                "title": f"Fictional report {index}",
                "text": text,
                "text_sha256": text_sha256(text),
                "source": "The Fictional Gazette",
                "url": f"https://gazette.example/{article_id}",
                "duplicate_of": None,
            }
        )
    return articles


class Cached:
    """Predictions computed beforehand, served in order (isolates our push overhead from spaCy)."""

    def __init__(self, model_version: str, predictions: dict[str, list[Result]]):
        self.model_version = model_version
        self.predictions = predictions

    def predict(self, texts: Sequence[str]) -> list[list[Result]]:
        return [self.predictions[text] for text in texts]


def annotation_for(text: str, regions: list[Result], rng: random.Random) -> dict[str, Any]:
    """An annotation as an annotator would leave it: the spans, a stance on some, document stances."""
    result = [dict(r, id=f"a{i}") for i, r in enumerate(regions)]
    for i, region in enumerate(regions):
        if rng.random() < 0.5:
            value = {k: region["value"][k] for k in ("start", "end", "text")}
            result.append(
                {
                    "id": f"a{i}",
                    "from_name": "mention_stance",
                    "to_name": "text",
                    "type": "choices",
                    "value": {**value, "choices": [rng.choice(["favor", "against", "neutral"])]},
                }
            )
    for target in ("tidewater_dam", "carbon_levy"):
        result.append(
            {
                "id": f"d_{target}",
                "from_name": f"stance_{target}",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [rng.choice(["favor", "against", "neutral", "not_about"])]},
            }
        )
    return {"result": result, "was_cancelled": False, "ground_truth": False, "lead_time": 12.0}


def timed(label: str, func: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    print(f"... {label}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    value = func(*args, **kwargs)
    return time.perf_counter() - started, value


def bare_push(client: Any, title: str, label_config: str, tasks: list[dict[str, Any]], batch_size: int) -> int:
    """What a script with only the SDK does: create the project, import the tasks in batches."""
    project_id = int(client.projects.create(title=title, label_config=label_config).id)
    bare_import(client, project_id, tasks, batch_size)
    return project_id


def bare_import(client: Any, project_id: int, tasks: list[dict[str, Any]], batch_size: int) -> None:
    for start in range(0, len(tasks), batch_size):
        client.projects.import_tasks(id=project_id, request=tasks[start : start + batch_size], return_task_ids=True)


def bare_export(client: Any, project_id: int) -> bytes:
    return b"".join(client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True))


def overhead(ours: float, bare: float) -> str:
    return f"{(ours - bare) / bare * 100:+.0f}% vs bare"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def runs(values: Sequence[float]) -> str:
    return "runs " + ", ".join(f"{v:.1f}" for v in values)


def bench_push(
    conn: Connection,
    client: Any,
    articles: list[dict[str, Any]],
    scheme: Any,
    spacy: SpacyPreannotator,
    predicted: list[list[Result]],
    ner_s: float,
    args: argparse.Namespace,
    tmp: Path,
) -> list[Row]:
    texts = [a["text"] for a in articles]
    cached = Cached(spacy.model_version, dict(zip(texts, predicted, strict=True)))
    tasks = build_tasks(articles, predicted, spacy.model_version, scheme)
    regions = sum(len(p) for p in predicted)
    warm = tasks[: min(500, len(tasks))]  # the first requests of a fresh server are slow: not measured
    timed("warming up the server", bare_push, client, "bench-warm-up", scheme.label_config(), warm, 250)
    bare, ours = [], []
    for round_ in range(args.repeat):  # alternate, so load from other processes hits both alike
        seconds, _ = timed(
            f"bare SDK import #{round_ + 1}",
            bare_push,
            client,
            f"bench-bare-{round_}",
            scheme.label_config(),
            tasks,
            args.batch_size,
        )
        bare.append(seconds)
        seconds, result = timed(
            f"newsstance push #{round_ + 1} (precomputed predictions)",
            push_articles,
            conn,
            articles,
            project=f"bench-ours-{round_}",
            scheme=scheme,
            preannotator=cached,
            batch_size=args.batch_size,
            state_path=tmp / f"push-{round_}.json",
            guidelines="",
            progress=False,
        )
        assert result.pushed == args.n and result.predictions == regions
        ours.append(seconds)
    rows = [
        (
            f"bare SDK: create project + import_tasks, {args.n} tasks with {regions} prediction regions",
            mean(bare),
            runs(bare),
        ),
        (
            "newsstance push_articles, same payload (validation, state file)",
            mean(ours),
            f"{runs(ours)}; {overhead(mean(ours), mean(bare))}",
        ),
    ]
    live, result = timed(
        "newsstance push with live spaCy",
        push_articles,
        conn,
        articles,
        project="bench-ours-spacy",
        scheme=scheme,
        preannotator=spacy,
        batch_size=args.batch_size,
        state_path=tmp / "push-live.json",
        guidelines="",
        progress=False,
    )
    assert result.pushed == args.n
    rows.append(("spaCy NER then bare import (sequential sum)", ner_s + mean(bare), ""))
    rows.append(
        (
            "newsstance push with live spaCy (NER overlaps the import)",
            live,
            overhead(live, ner_s + mean(bare)).replace("bare", "the sum"),
        )
    )
    return rows


def bench_pull(
    conn: Connection,
    client: Any,
    scheme: Any,
    predicted: list[list[Result]],
    tasks: list[dict[str, Any]],
    args: argparse.Namespace,
    tmp: Path,
) -> list[Row]:
    rng = random.Random(11)
    annotated = [
        dict(task, annotations=[annotation_for(task["data"]["text"], p, rng)])
        for task, p in zip(tasks, predicted, strict=True)
    ]
    setup_s, project_id = timed(
        "importing annotated tasks", bare_push, client, "bench-pull", scheme.label_config(), annotated, args.batch_size
    )
    rows: list[Row] = [(f"(setup, not compared) import {args.n} annotated tasks", setup_s, "")]
    bare, ours, ingest, incremental = [], [], [], []
    size = 0
    for round_ in range(args.repeat):
        seconds, raw = timed(f"bare SDK export #{round_ + 1}", bare_export, client, project_id)
        bare.append(seconds)
        size = len(raw)
        out = tmp / f"ann-{round_}" / "annotations.jsonl"
        kwargs = dict(
            project="bench-pull",
            out=out,
            state_path=tmp / f"pull-{round_}.json",
            articles_glob=str(tmp / "none-*.jsonl"),
            progress=False,
        )
        seconds, pulled = timed(f"newsstance pull #{round_ + 1}", pull, conn, **kwargs)
        assert pulled.new == args.n and pulled.records == args.n and pulled.conflicts == 0, pulled.summary()
        ours.append(seconds)
        ingest.append(pulled.seconds)
        if round_ == 0:
            seconds, again = timed("newsstance pull again (incremental)", pull, conn, **kwargs)
            assert again.unchanged == args.n
            incremental = [seconds, again.seconds]
    rows.append(
        (f"bare SDK: download_sync JSON, {args.n} annotated tasks ({size / 1e6:.0f} MB)", mean(bare), runs(bare))
    )
    rows.append(
        (
            "newsstance pull (download, raw copy, convert, verify spans, validate, write)",
            mean(ours),
            f"{runs(ours)}; {overhead(mean(ours), mean(bare))}",
        )
    )
    rows.append(("  of which conversion + checks + writes (ingest_export)", mean(ingest), runs(ingest)))
    rows.append(("newsstance pull again, nothing changed", incremental[0], overhead(incremental[0], mean(bare))))
    rows.append(("  of which incremental merge (ingest_export)", incremental[1], ""))
    return rows


Row = tuple[str, float, str]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="articles/tasks (default 10000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="tasks per import call (default 1000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each bare/ours pair, alternated (default 2)")
    parser.add_argument("--only", choices=["push", "pull", "all"], default="all")
    args = parser.parse_args(argv)
    scheme = load_scheme()
    articles = fictional_articles(args.n)
    rows: list[Row] = []

    with tempfile.TemporaryDirectory(prefix="newsstance-bench-") as tmp_name:
        tmp = Path(tmp_name)
        start_s, server = timed("starting Label Studio", ManagedServer(tmp / "ls", free_port()).start)
        rows.append(("start Label Studio (copy of the migrated template)", start_s, ""))
        try:
            conn = Connection(url=server.url, api_key=server.api_key)
            client = conn.client()
            spacy_load, spacy = timed("loading spaCy", SpacyPreannotator, scheme)
            ner_s, predicted = timed(f"spaCy NER over {args.n} texts", spacy.predict, [a["text"] for a in articles])
            rows.append((f"spaCy NER alone, {args.n} texts (model load {spacy_load:.1f} s)", ner_s, ""))
            if args.only in {"push", "all"}:
                rows += bench_push(conn, client, articles, scheme, spacy, predicted, ner_s, args, tmp)
            if args.only in {"pull", "all"}:
                tasks = build_tasks(articles, predicted, spacy.model_version, scheme)
                rows += bench_pull(conn, client, scheme, predicted, tasks, args, tmp)
        finally:
            server.stop()

    width = max(len(r[0]) for r in rows)
    print(f"\nLabel Studio push/pull, n={args.n}, batch size {args.batch_size}, {args.repeat} alternated run(s) each")
    for label, seconds, note in rows:
        print(f"{label:<{width}}  {seconds:7.1f} s  {note}")


if __name__ == "__main__":
    main()
