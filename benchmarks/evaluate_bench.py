"""Benchmark `newsstance evaluate`: N synthetic articles x E entities, R bootstrap resamples.

    .venv/bin/python benchmarks/evaluate_bench.py [--articles 10000] [--entities 20] [--resamples 1000]
                                                 [--large-mib 100] [--toolkit PATH]

Writes a synthetic release folder (parquet + README YAML, fictional tokens) and two noisy
predictions files for the same gold in a temp dir: the normal one (~1 KiB per article) and a large
one padded with spurious entities to about `--large-mib` MiB. Then measures

- the real command `newsstance evaluate ... --output` in a child process on each file: wall time,
  CPU seconds (user + system) and peak RSS - memory must not grow with the predictions file
  (issue 11: it streams); `--toolkit PATH` runs the child with another checkout's `scripts/` too
  (e.g. main before the change) for a before/after line;
- in process, each phase: load the split, stream + check + count predictions, bootstrap.

Target (issue 5): 10k articles x 20 entities with 1,000 resamples in under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, Features, List, Value

from newsstance.evaluate.bootstrap import resampled_sums
from newsstance.evaluate.dataset import load_release
from newsstance.evaluate.predictions import PredictionsSummary, TextLengths, stream_predictions
from newsstance.evaluate.scoring import SystemCounts, metrics, system_matrix
from newsstance.records import write_jsonl
from newsstance.scheme import Scheme, load_scheme

SYLLABLES = ["ka", "lo", "ven", "mar", "tis", "dor", "ul", "bre", "na", "quo", "sel", "ith"]


def features(scheme: Scheme) -> Features:
    return Features(
        {
            **{name: Value("string") for name in ("id", "title", "text", "source", "url", "published_at", "language")},
            "entities": List(
                {
                    "start": Value("int32"),
                    "end": Value("int32"),
                    "label": ClassLabel(names=scheme.entity_names),
                    "text": Value("string"),
                    "stance": ClassLabel(names=scheme.stance_names),
                }
            ),
            "tokens": List(Value("string")),
            "token_starts": List(Value("int32")),
            "token_ends": List(Value("int32")),
            "ner_tags": List(ClassLabel(names=scheme.bio_tags)),
            "stances": {t: ClassLabel(names=scheme.document_stance_names) for t in scheme.target_ids},
        }
    )


def synthetic_row(number: int, n_entities: int, rng: random.Random, scheme: Scheme) -> dict:
    """~10 filler words between entities of 1-3 words; every span on token boundaries."""
    tokens, tags, entities, starts, ends = [], [], [], [], []
    position = 0

    def word(tag: int) -> None:
        nonlocal position
        token = "".join(rng.choices(SYLLABLES, k=rng.randint(1, 3)))
        tokens.append(token)
        tags.append(tag)
        starts.append(position)
        ends.append(position + len(token))
        position += len(token) + 1

    for _ in range(n_entities):
        for _ in range(rng.randint(3, 15)):
            word(0)
        label = rng.randrange(len(scheme.entity_names))
        start = position
        for index in range(rng.randint(1, 3)):
            word(1 + 2 * label if index == 0 else 2 + 2 * label)
        entities.append(
            {
                "start": start,
                "end": ends[-1],
                "label": label,
                "text": "",
                "stance": rng.randrange(-1, len(scheme.stance_names)),
            }
        )
    text = " ".join(tokens)
    for entity in entities:
        entity["text"] = text[entity["start"] : entity["end"]]
    return {
        "id": f"{number:016x}",
        "title": f"Synthetic {number}",
        "text": text,
        "source": "Bench Ledger",
        "url": f"https://bench.example/{number}",
        "published_at": "2031-01-01T00:00:00Z",
        "language": "en",
        "entities": entities,
        "tokens": tokens,
        "token_starts": starts,
        "token_ends": ends,
        "ner_tags": tags,
        "stances": {t: rng.randrange(len(scheme.document_stance_names)) for t in scheme.target_ids},
    }


def noisy_prediction(row: dict, rng: random.Random, scheme: Scheme) -> dict:
    entities = []
    for entity in row["entities"]:
        roll = rng.random()
        if roll < 0.15:
            continue
        label = entity["label"] if roll < 0.8 else rng.randrange(len(scheme.entity_names))
        end = entity["end"] if roll < 0.9 else entity["end"] - 1
        stance = scheme.stance_names[rng.randrange(len(scheme.stance_names))]
        entities.append({"start": entity["start"], "end": end, "label": scheme.entity_names[label], "stance": stance})
    stances = {
        t: scheme.document_stance_names[rng.randrange(len(scheme.document_stance_names))] for t in scheme.target_ids
    }
    return {"id": row["id"], "entities": entities, "stances": stances}


def padded(prediction: dict, row: dict, count: int, rng: random.Random, scheme: Scheme) -> dict:
    """The prediction plus `count` spurious entities at random offsets (a larger file for the same gold)."""
    length = len(row["text"])
    extra = []
    for _ in range(count):
        start = rng.randrange(max(1, length - 8))
        extra.append(
            {
                "start": start,
                "end": min(length, start + rng.randint(1, 8)),
                "label": scheme.entity_names[rng.randrange(len(scheme.entity_names))],
                "stance": scheme.stance_names[rng.randrange(len(scheme.stance_names))],
            }
        )
    return {**prediction, "entities": prediction["entities"] + extra}


def write_fixture(
    folder: Path, n_articles: int, n_entities: int, scheme: Scheme, large_mib: float = 0
) -> tuple[Path, Path]:
    rng = random.Random(0)
    rows = [synthetic_row(number, n_entities, rng, scheme) for number in range(n_articles)]
    release = folder / "dist" / "0.0.1"
    (release / "data").mkdir(parents=True)
    Dataset.from_list(rows, features=features(scheme)).to_parquet(str(release / "data" / "test-00000-of-00001.parquet"))
    (release / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n    path: data/test-*.parquet\n---\n",
        encoding="utf-8",
    )
    predictions = folder / "predictions.jsonl"
    noisy = [noisy_prediction(row, rng, scheme) for row in rows]
    write_jsonl(predictions, noisy)
    if large_mib:
        per_article = large_mib * 2**20 / n_articles
        per_entity = 62  # bytes of one spurious entity in JSON
        count = max(0, int((per_article - predictions.stat().st_size / n_articles) / per_entity))
        write_jsonl(
            folder / "predictions-large.jsonl",
            (padded(p, row, count, rng, scheme) for p, row in zip(noisy, rows, strict=True)),
        )
    return release, predictions


def run_child(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall time, CPU time (user + system) and peak RSS (MiB) of one child (os.wait4: its own rusage)."""
    began = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{command[1]} failed with exit code {child.returncode}")
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--large-mib", type=float, default=100, help="Size of the padded predictions file (0: none)")
    parser.add_argument("--toolkit", type=Path, action="append", default=[], help="Also run this checkout's scripts/")
    parser.add_argument("--write-fixture", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    scheme = load_scheme()
    if args.write_fixture:  # child mode: keeps the big fixture out of the measuring process
        write_fixture(args.write_fixture, args.articles, args.entities, scheme, args.large_mib)
        return
    with tempfile.TemporaryDirectory(prefix="newsstance-evalbench-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "HF_DATASETS_CACHE": str(folder / "hf"), "HF_DATASETS_OFFLINE": "1"}
        fixture = [sys.executable, __file__, "--write-fixture", str(folder)]
        fixture += ["--articles", str(args.articles), "--entities", str(args.entities)]
        seconds, _, _ = run_child([*fixture, "--large-mib", str(args.large_mib)], env)
        release = folder / "dist" / "0.0.1"
        files = [folder / "predictions.jsonl"]
        if args.large_mib:
            files.append(folder / "predictions-large.jsonl")
        sizes = ", ".join(f"{path.name} {path.stat().st_size / 2**20:.1f} MiB" for path in files)
        print(f"fixture: {args.articles} articles x {args.entities} entities written in {seconds:.1f} s ({sizes})")

        toolkits = [("this checkout", os.environ.get("PYTHONPATH", ""))]
        toolkits += [(str(path), str(path.resolve() / "scripts")) for path in args.toolkit]
        for name, pythonpath in toolkits:
            for path in files:
                command = [
                    str(Path(sys.executable).parent / "newsstance"),
                    "evaluate",
                    str(path),
                    "--dataset",
                    str(release),
                    "--resamples",
                    str(args.resamples),
                    "--output",
                    str(folder / "results.json"),
                ]
                elapsed, cpu, peak = run_child(command, {**env, "PYTHONPATH": pythonpath})
                print(
                    f"newsstance evaluate {path.name} ({name}, {args.resamples} resamples, fresh cache): "
                    f"{elapsed:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak:.0f} MiB"
                )

        phases = {}
        cpu_began = time.process_time()
        began = time.perf_counter()
        loaded = load_release(str(release), scheme=scheme)
        phases["load split (datasets.load_dataset, private cache) + gold columns"] = time.perf_counter() - began
        began = time.perf_counter()
        summary = PredictionsSummary(files[0])
        system = SystemCounts(scheme, loaded.gold)
        lengths = TextLengths(loaded.gold.ids, loaded.gold.text_lengths)
        for prediction in stream_predictions(files[0], scheme, lengths, summary):
            system.add(lengths.row[prediction.id], prediction)
        counts = system_matrix(system.finish())
        phases["stream + check predictions, match (nervaluate schemes, seqeval chunks, stance)"] = (
            time.perf_counter() - began
        )
        began = time.perf_counter()
        sums = resampled_sums(counts, args.resamples, seed=0, progress=False)
        figures = metrics(scheme, sums)
        phases[f"bootstrap ({args.resamples} resamples, {len(figures)} figures)"] = time.perf_counter() - began
        print(f"in process ({time.process_time() - cpu_began:.1f} s CPU in total):")
        for name, seconds in phases.items():
            print(f"  {name}: {seconds:.2f} s")
        strict = metrics(scheme, counts.sum(axis=0, keepdims=True))["entities/strict/micro/f1"][0]
        print(
            f"  count matrix {counts.shape[0]} x {counts.shape[1]}; strict F1 of the noisy predictions "
            f"{strict:.3f}; bootstrap sd {np.std(figures['entities/strict/micro/f1']):.4f}"
        )
        print(f"  load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")


if __name__ == "__main__":
    main()
