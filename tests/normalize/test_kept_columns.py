"""The collect stage's columns of every input in path order come from the plan's `KeptColumns`
and this run's task entries, without reading the kept index lines again: the same columns as
reading every entry, and none at all when the task entries do not match the plan."""

from __future__ import annotations

import random

import orjson

from newsstance.normalize import engine


def _entry(path: str, part: str | None, records: int, row: int) -> dict:
    entry: dict = {"path": path, "records": records, "quarantine": []}
    if part:
        entry |= {"part": part, "rows": [row, records], "rec": [row * 100, records * 100 + 7]}
    return entry


def _named(columns, names) -> list[tuple]:
    return [(r, names[p] if p >= 0 else None, row, size) for r, p, row, size in columns.tolist()]


def test_plan_columns_and_task_entries_merge_in_path_order(tmp_path) -> None:
    rng = random.Random(5)
    work = tmp_path / "work"
    (work / engine.ENTRIES_DIR).mkdir(parents=True)
    paths = sorted(f"d{rng.randrange(9)}/f{n:04d}.json" for n in range(300))
    kept_columns = engine.KeptColumns()
    tasks: list[list[dict]] = [[], [], []]
    kept = 0
    with (work / engine.INDEX_FILE).open("wb") as index:
        for number, path in enumerate(paths):
            records = rng.choice([0, 1, 3])
            if rng.random() < 0.3:  # changed: parsed by a task (tasks are contiguous in path order)
                part = f"new-{number * 3 // len(paths)}" if records else None
                tasks[number * 3 // len(paths)].append(_entry(path, part, records, number))
                kept_columns.insert_here(kept)
            else:
                entry = _entry(path, f"old-{number % 4}" if records else None, records, number)
                index.write(orjson.dumps(entry) + b"\n")
                kept_columns.add(entry)
                kept += 1
    kept_columns.save(work)
    for task, entries in enumerate(tasks):
        (work / engine.ENTRIES_DIR / f"{task:05d}.jsonl").write_bytes(
            b"".join(orjson.dumps(e) + b"\n" for e in entries)
        )

    everything = [orjson.loads(line) for line in (work / engine.INDEX_FILE).read_bytes().splitlines()]
    everything += [entry for entries in tasks for entry in entries]
    in_order = sorted(everything, key=lambda entry: entry["path"])
    assert [e["path"] for e in engine.merged_index(work)] == paths == [e["path"] for e in in_order]
    columns, names = engine.KeptColumns.merged(work)
    read_names: dict[str, int] = {}
    read = [engine.entry_columns(e, read_names) for e in in_order]
    expected = [(r, list(read_names)[p] if p >= 0 else None, row, size) for r, p, row, size in read]
    assert _named(columns, names) == expected

    # a task entry missing (a task that wrote less than it was given): no columns (the caller reads
    # the index), and the index is merged by path
    last = work / engine.ENTRIES_DIR / "00002.jsonl"
    last.write_bytes(b"".join(last.read_bytes().splitlines(keepends=True)[:-1]))
    assert engine.KeptColumns.merged(work) is None
    missing = tasks[2][-1]["path"]
    assert [e["path"] for e in engine.merged_index(work)] == [p for p in paths if p != missing]
