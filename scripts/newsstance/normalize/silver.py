"""Silver pre-annotation as an engine stage: spaCy NER over every canonical article, in tasks.

Each task takes a contiguous share of the article shards, runs `newsstance.ner.LanguageRoutedNER`
(spaCy for `en` in `nlp.pipe` batches of `batch_size`, natasha for `ru`, no prediction for other
languages) over the canonical records and writes its predictions;
the parts are then joined, in article order, into one predictions JSONL file
(`schema/predictions.schema.json`) that `newsstance build --silver-predictions FILE` publishes
as the `silver` config. The number of tasks running at once is `--workers`, under any executor.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from datatrove.pipeline.base import PipelineStep as DatatroveStep

from newsstance.errors import UserError
from newsstance.ner import DEFAULT_MODEL, PIPE_BATCH
from newsstance.normalize import engine, storage
from newsstance.records import atomic_write


class SilverAnnotate(DatatroveStep):
    """Task `rank`: its share of the article shards -> `parts/<rank>.jsonl` predictions."""

    name = "silver"
    type = "newsstance"

    def __init__(self, shards: list[str], work: str, model: str, batch_size: int):
        super().__init__()
        self.shards, self.work, self.model, self.batch_size = shards, work, model, batch_size

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        from newsstance.ner import LanguageRoutedNER
        from newsstance.scheme import load_scheme

        ner = LanguageRoutedNER(load_scheme(), self.model)  # each article through its language's model, or none

        def canonical() -> Iterator[dict[str, Any]]:
            for shard in engine.shard(self.shards, rank, world_size):
                with open(shard, "rb") as handle:
                    for line in handle:
                        record = orjson.loads(line)
                        if record.get("duplicate_of") is None:
                            yield record

        records = list(canonical())
        lines = []
        found = ner.spans(((r["text"], r.get("language")) for r in records), batch_size=self.batch_size)
        for record, spans in zip(records, found, strict=True):
            if spans is None:  # a language without a model: no prediction rather than the English model's guesses
                self.stat_update("no_model", value=1)
                continue
            entities = [{"start": s.start, "end": s.end, "label": s.label} for s in spans]
            lines.append(orjson.dumps({"id": record["id"], "entities": entities, "stances": {}}) + b"\n")
            self.stat_update("entities", value=len(entities))
        (Path(self.work) / "parts").mkdir(parents=True, exist_ok=True)
        (Path(self.work) / "parts" / f"{rank:05d}.jsonl").write_bytes(b"".join(lines))
        self.stat_update("articles", value=len(records))
        return iter(())


def run_silver(
    articles: Path,
    out: Path,
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = PIPE_BATCH,
    workers: int = 1,
    executor: str = "local",
    options: engine.EngineOptions | None = None,
) -> int:
    """Predictions for every canonical article under `articles` into `out` (atomic); returns the count."""
    shards = sorted(str(p) for p in articles.glob(storage.ARTICLES_GLOB))
    if not shards:
        raise UserError(f"no {storage.ARTICLES_GLOB} in {articles} (run `newsstance normalize` first)")
    if batch_size < 1 or workers < 1:
        raise UserError("--batch-size and --workers must be at least 1")
    if executor == "slurm":
        raise UserError("the silver stage runs with --executor local or ray")
    options = options or engine.EngineOptions()
    options.executor, options.workers = executor, workers
    work = out.parent / f".silver-{int(time.time() * 1000):x}"
    tasks = min(len(shards), max(workers, 1))
    try:
        pipeline = [SilverAnnotate(shards, str(work), model, batch_size)]
        engine.make_executor(options, pipeline, tasks, work / "logs", "silver").run()
        count = 0
        with atomic_write(out) as handle:
            for rank in range(tasks):
                data = (work / "parts" / f"{rank:05d}.jsonl").read_bytes()
                handle.write(data)
                count += data.count(b"\n")
        return count
    finally:
        shutil.rmtree(work, ignore_errors=True)
