"""A re-run keeps the article shards whose content cannot have changed (same inputs, same parse,
same duplicate marks) without writing them again, and rewrites the rest: either way its outputs
are byte for byte those of a clean run over the same inputs."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from newsstance.normalize import outfile, storage
from newsstance.normalize.runner import run_normalize

CRAWL = "2026-03-14T09:30:00Z"
PLACES = ["Westmarch", "Quillon Bay", "Orrin Quay", "Penhallow", "Tarrow Fen", "Ebbing Cross", "Morrow Hill"]


def _text(number: int) -> str:
    """A fictional report of about 120 words, its wording set by `number`."""
    place, other = PLACES[number % len(PLACES)], PLACES[(number * 3 + 1) % len(PLACES)]
    sentences = [
        f"The council of {place} met on day {number} to discuss the state of the old harbour wall.",
        f"Engineers from {other} told members that {number + 2} sections had moved since the spring storms.",
        f"A temporary barrier of {number * 7 + 11} sandbags will be placed along the quay before the winter tides.",
        f"Residents asked why the work had been delayed for {number % 5 + 2} years, and the chair promised a report.",
        f"The ferry to {other} will keep its timetable, although the landing stage may move {number + 40} metres.",
        f"Fishermen said the wall near berth {number % 9 + 1} had been cracked long before the last inspection.",
        f"A public meeting is planned for the {number % 20 + 3}th, when the full costs are expected to be published.",
    ]
    return "\n\n".join(sentences)


def _write(folder: Path, name: str, number: int, text: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "title": f"Harbour wall report {number}",
        "maintext": text or _text(number),
        "url": f"https://coastcourier.example/harbour/{number}",
        "source_domain": "coastcourier.example",
        "date_publish": "2026-03-10 08:00:00",
        "language": "en",
    }
    (folder / name).write_bytes(orjson.dumps(record))


def _first_days(raw: Path) -> None:
    for number in range(12):  # 12 records: three full shards of 4
        _write(raw / f"day{1 + number // 6}", f"{number:02d}.json", number)


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("articles-*.jsonl"))}


def _identity(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in sorted(out.glob("articles-*.jsonl"))}


def _outputs(out: Path) -> dict:
    return orjson.loads((out / "manifest.json").read_bytes())["outputs"]


def _same_as_a_clean_run(raw: Path, out: Path, clean: Path) -> None:
    run_normalize([raw], clean, crawl_time=CRAWL, shard_size=4)
    assert _shards(out) == _shards(clean)
    assert _outputs(out) == _outputs(clean)


def _written(monkeypatch) -> list[str]:
    """Names of the files the commit writes (staged), in order."""
    names: list[str] = []
    real = outfile.HashingWriter.__init__

    def recording(self, path, *args, **kwargs):
        names.append(Path(path).name)
        real(self, path, *args, **kwargs)

    monkeypatch.setattr(outfile.HashingWriter, "__init__", recording)
    return names


def test_new_inputs_at_the_end_leave_the_earlier_shards_unwritten(tmp_path, monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _first_days(raw)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    before = _identity(out)
    assert len(before) == 3
    for number in (12, 13):  # a new day's crawl folder, sorting after the others
        _write(raw / "day3", f"{number:02d}.json", number)
    written = _written(monkeypatch)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    assert [name for name in written if name.startswith("articles-")] == ["articles-00003.jsonl"]
    after = _identity(out)
    assert {name: after[name] for name in before} == before  # same inode, same mtime: not replaced
    assert len(after) == 4
    monkeypatch.undo()
    _same_as_a_clean_run(raw, out, tmp_path / "clean")


def test_a_new_canonical_rewrites_the_shard_of_the_record_it_marks(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _first_days(raw)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    before = _identity(out)
    longer = _text(1) + "\n\nThe chair added that the council would meet again next week."
    _write(raw / "day3", "12.json", 12, text=longer)  # record 1's text, a sentence longer: the canonical
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    records = [orjson.loads(line) for line in (out / "articles-00000.jsonl").read_bytes().splitlines()]
    assert records[1]["duplicate_of"] is not None  # record 1 (in the first shard) is now a duplicate
    after = _identity(out)
    assert after["articles-00000.jsonl"] != before["articles-00000.jsonl"]
    assert after["articles-00001.jsonl"] == before["articles-00001.jsonl"]
    _same_as_a_clean_run(raw, out, tmp_path / "clean")


def _damage(shard: Path) -> None:
    """Other bytes, same size (a stat-only check would miss it if the times were set back)."""
    data = bytearray(shard.read_bytes())
    data[10:13] = b"XYZ"
    shard.write_bytes(bytes(data))


def test_a_damaged_shard_is_written_again(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _first_days(raw)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    _damage(out / "articles-00001.jsonl")
    _write(raw / "day3", "12.json", 12)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    _same_as_a_clean_run(raw, out, tmp_path / "clean")


def _read_from_parts(monkeypatch) -> set[str]:
    """Paths of the inputs whose record lines the commit reads from the parts."""
    paths: set[str] = set()
    real = storage.SegmentReader.read

    def recording(self, entry, kind):
        paths.add(str(entry["path"]))
        return real(self, entry, kind)

    monkeypatch.setattr(storage.SegmentReader, "read", recording)
    return paths


def _with_a_duplicate(raw: Path) -> None:
    """Twelve reports, and longer copies of reports 2 and 8 (their canonicals)."""
    _first_days(raw)
    _write(raw / "day2", "20.json", 20, text=_text(2) + "\n\nThe chair added that the council would meet again.")
    _write(raw / "day2", "21.json", 21, text=_text(8) + "\n\nThe ferry company has not yet commented.")


def test_scattered_edits_copy_the_unchanged_inputs_lines_from_the_old_shards(tmp_path, monkeypatch):
    """Edits in every shard rewrite every shard; the lines of inputs whose parse and marks are
    unchanged come from the old shards, not from the parts; a record whose canonical changed
    (here its id: the canonical's address moved) is marked again."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    _with_a_duplicate(raw)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    first = [orjson.loads(line) for line in (out / "articles-00000.jsonl").read_bytes().splitlines()]
    assert first[2]["duplicate_of"] is not None
    for number in (0, 5, 9):  # one input in each shard, other words
        _write(raw / f"day{1 + number // 6}", f"{number:02d}.json", number, text=_text(number + 40))
    record = orjson.loads((raw / "day2" / "20.json").read_bytes())
    record["url"] = "https://coastcourier.example/harbour/20-moved"
    (raw / "day2" / "20.json").write_bytes(orjson.dumps(record))
    before = _identity(out)
    read = _read_from_parts(monkeypatch)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    monkeypatch.undo()
    assert all(_identity(out)[name] != before[name] for name in before)  # every shard rewritten
    edited = {"day1/00.json", "day1/05.json", "day2/09.json", "day2/20.json"}
    assert read == edited | {"day1/02.json"}  # the edited inputs, and the one whose mark changed
    assert orjson.loads((out / "articles-00002.jsonl").read_bytes().splitlines()[0])["duplicate_of"]  # 08: copied
    first = [orjson.loads(line) for line in (out / "articles-00000.jsonl").read_bytes().splitlines()]
    assert first[2]["duplicate_of"] == next(r for r in _records(out) if r["url"].endswith("20-moved"))["id"]
    _same_as_a_clean_run(raw, out, tmp_path / "clean")


def _records(out: Path) -> list[dict]:
    return [
        orjson.loads(line) for path in sorted(out.glob("articles-*.jsonl")) for line in path.read_bytes().splitlines()
    ]


def test_lines_are_not_copied_from_a_damaged_old_shard(tmp_path, monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _with_a_duplicate(raw)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    _damage(out / "articles-00001.jsonl")
    for number in (0, 5, 9):
        _write(raw / f"day{1 + number // 6}", f"{number:02d}.json", number, text=_text(number + 40))
    read = _read_from_parts(monkeypatch)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    monkeypatch.undo()
    old_shard_1 = {f"day{1 + n // 6}/{n:02d}.json" for n in range(4, 8)} - {"day1/05.json"}
    assert old_shard_1 <= read  # its inputs were read from the parts again
    _same_as_a_clean_run(raw, out, tmp_path / "clean")


def test_an_index_pointing_at_the_wrong_bytes_is_not_copied_from(tmp_path, monkeypatch):
    """An `out` whose range is not the input's whole lines, or is another input's (an index edited
    by hand), is not copied from: those inputs are marked afresh from the parts."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    _with_a_duplicate(raw)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    index = out / ".cache" / "index.jsonl"
    entries = [orjson.loads(line) for line in index.read_bytes().splitlines()]
    by_path = {entry["path"]: entry for entry in entries}
    by_path["day1/03.json"]["out"][1] += 1  # one byte further: starts mid-line, ends in the next line
    by_path["day2/08.json"]["out"][1:3] = by_path["day2/10.json"]["out"][1:3]  # another input's whole lines
    index.write_bytes(b"".join(orjson.dumps(entry) + b"\n" for entry in entries))
    _write(raw / "day1", "00.json", 0, text=_text(40))  # shards 0 and 2 are rewritten
    _write(raw / "day2", "09.json", 9, text=_text(49))
    read = _read_from_parts(monkeypatch)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    monkeypatch.undo()
    assert {"day1/03.json", "day2/08.json"} <= read
    _same_as_a_clean_run(raw, out, tmp_path / "clean")
