"""Benchmark `newsstance evaluate`: N synthetic articles x E entities, R bootstrap resamples.

    .venv/bin/python benchmarks/evaluate_bench.py [--articles 10000] [--entities 20] [--resamples 1000]

Writes a synthetic release folder (parquet + README YAML, fictional tokens) and a noisy
predictions file in a temp dir, then measures

- the real command `newsstance evaluate ... --output` in a child process: wall time and peak RSS;
- in process, each phase: load the split, read + check predictions, match (count matrix), bootstrap.

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
from newsstance.evaluate.predictions import read_predictions
from newsstance.evaluate.scoring import count_matrix, metrics
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


def write_fixture(folder: Path, n_articles: int, n_entities: int, scheme: Scheme) -> tuple[Path, Path]:
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
    write_jsonl(predictions, (noisy_prediction(row, rng, scheme) for row in rows))
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
    parser.add_argument("--write-fixture", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    scheme = load_scheme()
    if args.write_fixture:  # child mode: keeps the big fixture out of the measuring process
        write_fixture(args.write_fixture, args.articles, args.entities, scheme)
        return
    with tempfile.TemporaryDirectory(prefix="newsstance-evalbench-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "HF_DATASETS_CACHE": str(folder / "hf"), "HF_DATASETS_OFFLINE": "1"}
        seconds, _, _ = run_child(
            [
                sys.executable,
                __file__,
                "--write-fixture",
                str(folder),
                "--articles",
                str(args.articles),
                "--entities",
                str(args.entities),
            ],
            env,
        )
        release, predictions = folder / "dist" / "0.0.1", folder / "predictions.jsonl"
        print(
            f"fixture: {args.articles} articles x {args.entities} entities written in {seconds:.1f} s "
            f"({predictions.stat().st_size / 2**20:.1f} MiB predictions)"
        )

        command = [
            str(Path(sys.executable).parent / "newsstance"),
            "evaluate",
            str(predictions),
            "--dataset",
            str(release),
            "--resamples",
            str(args.resamples),
            "--output",
            str(folder / "results.json"),
        ]
        elapsed, cpu, peak = run_child(command, env)
        print(
            f"newsstance evaluate (child process, {args.resamples} resamples, fresh cache): {elapsed:.1f} s wall, "
            f"{cpu:.1f} s CPU, peak RSS {peak:.0f} MiB"
        )

        phases = {}
        cpu_began = time.process_time()
        began = time.perf_counter()
        loaded = load_release(str(release), scheme=scheme)
        phases["load split (datasets.load_dataset, private cache) + gold articles"] = time.perf_counter() - began
        began = time.perf_counter()
        preds = read_predictions(predictions, scheme, {a.id: len(a.text) for a in loaded.articles})
        phases["read + check predictions"] = time.perf_counter() - began
        began = time.perf_counter()
        counts = count_matrix(scheme, loaded.articles, [preds.by_id[a.id] for a in loaded.articles], progress=False)
        phases["match: nervaluate schemes, seqeval chunks, stance (count matrix)"] = time.perf_counter() - began
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
