"""Runs over a folder: idempotence, incremental updates, atomic output swaps, worker processes,
duplicates across pages and the manifest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest

from newsstance.normalize import commit, engine, outfile, runner, storage
from newsstance.normalize.runner import run_normalize

CRAWL = "2026-03-14T09:30:00Z"


def _snapshot(out: Path) -> dict[str, bytes]:
    """Every visible output file's bytes."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _raw(tmp_path: Path, pages, files: dict[str, str | bytes] | None = None) -> Path:
    raw = tmp_path / "raw"
    contents = files or {
        "one/agg.txt": pages.aggregator,
        "one/plain.txt": pages.plain,
        "two/page.html": pages.html,
        "two/np.json": orjson.dumps(pages.newsplease),
        "two/empty.txt": b"",
    }
    for name, content in contents.items():
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return raw


def test_rerun_on_unchanged_input_is_a_no_op(tmp_path, pages):
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    first = run_normalize([raw], out, crawl_time=CRAWL)
    assert (first.files, first.new, first.changed, first.reparsed) == (5, 5, 5, 5)
    before = _snapshot(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    second = run_normalize([raw], out, crawl_time=CRAWL)
    assert (second.changed, second.reparsed, second.up_to_date) == (0, 0, True)
    assert "0 changed" in "\n".join(second.render())
    assert (second.articles, second.quarantined) == (first.articles, first.quarantined)
    assert _snapshot(out) == before
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == mtimes  # nothing rewritten


def test_counts_of_a_rerun_whose_cached_results_vanished(tmp_path, pages):
    """Inputs whose cached results are gone are parsed again but are neither new nor modified;
    a modified and a deleted input beside them are counted as such."""
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    for path in (out / ".cache" / "parts").glob("*.rec.jsonl"):
        path.write_bytes(b"")  # every segment gone
    (raw / "one" / "plain.txt").write_text("Dunmere pool reopens\nThe town pool reopened after repairs.\n")
    (raw / "two" / "page.html").unlink()
    summary = run_normalize([raw], out, crawl_time=CRAWL)
    assert (summary.new, summary.modified, summary.deleted) == (0, 1, 1)
    assert summary.reparsed == summary.files - 1 == 3  # every input but the quarantined empty one


def test_changed_and_deleted_files_are_reprocessed_and_removed(tmp_path, pages, outputs):
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    (raw / "one" / "plain.txt").write_text("Dunmere pool reopens\nThe town pool reopened after repairs.\n")
    (raw / "two" / "page.html").unlink()
    (raw / "two" / "new.txt").write_text("Dunmere market moves\nThe Saturday market moves to the square.\n")
    summary = run_normalize([raw], out, crawl_time=CRAWL)
    assert (summary.new, summary.modified, summary.deleted, summary.reparsed) == (1, 1, 1, 2)
    records, quarantine = outputs(out)
    titles = {r["provenance"]["path"]: r["title"] for r in records if r["role"] != "related"}
    assert titles["one/plain.txt"] == "Dunmere pool reopens"
    assert titles["two/new.txt"] == "Dunmere market moves"
    assert "two/page.html" not in {r["provenance"]["path"] for r in records}
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert "two/page.html" not in manifest["files"] and "two/new.txt" in manifest["files"]
    assert [q["path"] for q in quarantine] == ["two/empty.txt"]
    # the cache holds no segment of the deleted or replaced versions once the run is done
    index = storage.load_index(out)
    assert set(index) == set(manifest["files"])
    live_parts = {e["part"] for e in index.values() if e["part"]}
    on_disk = {p.name.split(".")[0] for p in (out / ".cache" / "parts").iterdir()}
    assert on_disk == live_parts


def test_a_crash_while_writing_leaves_the_previous_output_intact(tmp_path, pages, monkeypatch):
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    before = _snapshot(out)
    (raw / "one" / "plain.txt").write_text("Dunmere pool reopens\nThe town pool reopened after repairs.\n")
    original_line, original_block = outfile.HashingWriter.write_line, outfile.HashingWriter.write_block
    calls = {"n": 0}

    def crash_on_third_write():
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")

    def write_line(self, line):
        crash_on_third_write()
        original_line(self, line)

    def write_block(self, data, records):
        crash_on_third_write()
        original_block(self, data, records)

    monkeypatch.setattr(outfile.HashingWriter, "write_line", write_line)
    monkeypatch.setattr(outfile.HashingWriter, "write_block", write_block)
    with pytest.raises(KeyboardInterrupt):
        run_normalize([raw], out, crawl_time=CRAWL)
    monkeypatch.undo()
    assert calls["n"] == 3
    assert _snapshot(out) == before
    assert not list(out.glob(".staging-*"))
    after = run_normalize([raw], out, crawl_time=CRAWL)
    assert after.modified == 1 and _snapshot(out) != before


def test_a_crash_during_the_swap_is_rolled_forward(tmp_path, pages, monkeypatch, outputs):
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    (raw / "one" / "plain.txt").write_text("Dunmere pool reopens\nThe town pool reopened after repairs.\n")
    real_replace = os.replace
    calls = {"n": 0}

    def fail_second_move(src, dst):
        if storage.STAGING_PREFIX in str(src):  # the swap's moves (other files are renamed into place too)
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError("simulated power cut")
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", fail_second_move)
    with pytest.raises(OSError):
        run_normalize([raw], out, crawl_time=CRAWL)
    monkeypatch.undo()
    assert (out / storage.JOURNAL_NAME).exists()
    summary = run_normalize([raw], out, crawl_time=CRAWL)  # finishes the swap first, then has nothing to do
    assert summary.up_to_date
    assert not (out / storage.JOURNAL_NAME).exists()
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    for name, info in manifest["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == info["sha256"]
    records, _ = outputs(out)
    assert "Dunmere pool reopens" in {r["title"] for r in records}


def test_worker_processes_give_identical_output(tmp_path, pages):
    files = {
        f"site{i % 3}/page{i:02d}.txt": pages.aggregator.replace("Quillon Bay", f"Quillon Bay {i}") for i in range(12)
    }
    files |= {
        "np/batch.jsonl": b"\n".join(
            orjson.dumps({**pages.newsplease, "url": f"https://p.example/{i}"}) for i in range(5)
        )
    }
    raw = _raw(tmp_path, pages, files)
    one = run_normalize([raw], tmp_path / "one", crawl_time=CRAWL, workers=1)
    two = run_normalize([raw], tmp_path / "two", crawl_time=CRAWL, workers=2, shard_size=10)
    assert one.articles == two.articles == 12 * 3 + 5
    lines_one = (tmp_path / "one" / "articles-00000.jsonl").read_bytes().splitlines()
    lines_two = b"".join(p.read_bytes() for p in sorted((tmp_path / "two").glob("articles-*.jsonl"))).splitlines()
    assert lines_one == lines_two
    assert len(list((tmp_path / "two").glob("articles-*.jsonl"))) == 5  # 41 records in shards of 10
    paths = [orjson.loads(line)["provenance"]["path"] for line in lines_one]
    assert paths == sorted(paths)


def test_recurring_related_article_becomes_one_canonical(tmp_path, pages, outputs):
    cut = pages.aggregator.replace("crew about a month of income.", "crew about a month")
    raw = _raw(
        tmp_path,
        pages,
        {
            "p1.txt": pages.aggregator,
            "p2.txt": pages.aggregator.replace(
                "Harbour board approves new ferry pier at Quillon Bay", "Quillon pier works start in May"
            ),
            "p3.txt": cut,
        },
    )
    summary = run_normalize([raw], tmp_path / "out", crawl_time=CRAWL)
    records, _ = outputs(tmp_path / "out")
    fishermen = [r for r in records if r["title"] == "Fishermen seek compensation for pier works"]
    assert len(fishermen) == 3
    canonical = [r for r in fishermen if r["duplicate_of"] is None]
    assert len(canonical) == 1 and not canonical[0]["truncated"]
    assert canonical[0]["provenance"]["path"] in ("p1.txt", "p2.txt")
    assert all(r["duplicate_of"] == canonical[0]["id"] for r in fishermen if r is not canonical[0])
    assert next(r for r in fishermen if r["provenance"]["path"] == "p3.txt")["truncated"]
    assert summary.duplicates == sum(1 for r in records if r["duplicate_of"])


def test_ids_do_not_depend_on_the_cleaned_text(tmp_path, pages, outputs):
    raw = _raw(tmp_path, pages, {"a.txt": pages.plain})
    run_normalize([raw], tmp_path / "o1", crawl_time=CRAWL)
    (raw / "a.txt").write_text(pages.plain.replace("nine in the evening", "ten at night"))
    run_normalize([raw], tmp_path / "o2", crawl_time=CRAWL)
    (first,), _ = outputs(tmp_path / "o1")
    (second,), _ = outputs(tmp_path / "o2")
    assert first["id"] == second["id"] and first["text_sha256"] != second["text_sha256"]


def test_manifest_lists_raw_files_and_outputs(tmp_path, pages):
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    summary = run_normalize([raw], out, crawl_time=CRAWL)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    plain = raw / "one" / "plain.txt"
    assert manifest["files"]["one/plain.txt"] == {
        "sha256": hashlib.sha256(plain.read_bytes()).hexdigest(),
        "size": plain.stat().st_size,
        "records": 1,
        "quarantined": 0,
        "parser_version": manifest["parser_version"],
    }
    assert manifest["files"]["two/empty.txt"]["quarantined"] == 1
    assert set(manifest["outputs"]) == {"articles-00000.jsonl", "quarantine.jsonl"}
    assert manifest["outputs"]["articles-00000.jsonl"]["records"] == summary.articles


def test_missing_input_is_a_user_error(tmp_path):
    from newsstance.errors import UserError

    with pytest.raises(UserError, match="input not found"):
        run_normalize([tmp_path / "nope"], tmp_path / "out")
    with pytest.raises(UserError, match="--crawl-time"):
        run_normalize([tmp_path], tmp_path / "out", crawl_time="last tuesday-ish")


def test_shards_are_contiguous_and_cover_everything():
    tasks = list(range(10))
    shards = [engine.shard(tasks, rank, 3) for rank in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_cache_parts_are_compacted_when_mostly_dead(tmp_path, pages, monkeypatch, outputs):
    """Dead segments (of changed or deleted files) never outweigh live ones for long: the cache stays < 2x."""
    monkeypatch.setattr(commit, "COMPACT_MIN_DEAD_BYTES", 0)
    monkeypatch.setattr(engine, "tasks_for", lambda files, workers, executor: 1)  # one part for four files
    files = {f"p{i}.txt": pages.aggregator.replace("Quillon Bay", f"Quillon Bay {i}") for i in range(4)}
    raw, out = _raw(tmp_path, pages, files), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    (first_part,) = {e["part"] for e in storage.load_index(out).values()}
    for i in range(3):
        (raw / f"p{i}.txt").unlink()
    summary = run_normalize([raw], out, crawl_time=CRAWL)  # 3 of 4 segments dead: compacted while merging
    assert summary.deleted == 3
    (entry,) = storage.load_index(out).values()
    assert entry["part"] != first_part and entry["part"].startswith("c")
    assert {p.name.split(".")[0] for p in (out / ".cache" / "parts").iterdir()} == {entry["part"]}
    records, _ = outputs(out)
    assert {r["title"] for r in records if r["role"] == "main"} == {
        "Harbour board approves new ferry pier at Quillon Bay 3"
    }
    assert run_normalize([raw], out, crawl_time=CRAWL).up_to_date


def test_a_persistently_unreadable_file_does_not_count_as_a_change(tmp_path, pages):
    raw, out = _raw(tmp_path, pages, {"a.txt": pages.plain}), tmp_path / "out"
    os.symlink(raw / "gone.txt", raw / "dangling.txt")
    first = run_normalize([raw], out, crawl_time=CRAWL)
    assert first.quarantined == {"read_error": 1}
    assert run_normalize([raw], out, crawl_time=CRAWL).up_to_date


def test_steps_are_picklable_and_run_the_same_anywhere(tmp_path, pages):
    """What a distributed executor needs: ship the step chain and a shard of tasks, get the same articles."""
    import pickle

    from newsstance.normalize.config import NormalizeConfig
    from newsstance.normalize.crawltime import CrawlPlanner
    from newsstance.normalize.dates import parse_timestamp
    from newsstance.normalize.model import Article
    from newsstance.normalize.steps import build_steps, run_steps

    raw = _raw(tmp_path, pages)
    planner = CrawlPlanner(raw, parse_timestamp(CRAWL))
    tasks = runner.plan_tasks(runner.discover([raw], tmp_path / "out"), raw, planner)
    steps = build_steps(NormalizeConfig())
    shipped = pickle.loads(pickle.dumps(steps))
    local = [i.record for i in run_steps(engine.shard(tasks, 1, 2), steps) if isinstance(i, Article)]
    remote = [i.record for i in run_steps(engine.shard(tasks, 1, 2), shipped) if isinstance(i, Article)]
    assert local == remote and local
    assert [s.counts for s in shipped] == [s.counts for s in steps]
    assert pickle.loads(pickle.dumps(shipped))[0].counts == shipped[0].counts  # used steps still pickle


# ---------------------------------------------------------------- stat-trusted re-runs


@pytest.fixture
def hashes(monkeypatch):
    """Counts the inputs planning hashes (the re-run cost the stat rule saves)."""
    calls: list[str] = []
    real = runner.input_sha256

    def counting(path: str, rel: str | None = None) -> str:
        calls.append(rel or path)
        return real(path, rel)

    monkeypatch.setattr(runner, "input_sha256", counting)
    return calls


def _age(raw: Path) -> None:
    """Every input looks modified long ago (mtime); ctime cannot be set, so tests that need a
    trusted stat lower storage.RACY_NS instead."""
    for path in raw.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))


def test_unchanged_inputs_are_not_hashed_again_once_their_stat_is_trusted(tmp_path, pages, monkeypatch, hashes):
    monkeypatch.setattr(storage, "RACY_NS", 0)
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    _age(raw)
    run_normalize([raw], out, crawl_time=CRAWL)
    index = storage.load_index(out)
    assert all(entry["stat"] and entry["stat"][0] == entry["size"] for entry in index.values())
    hashes.clear()
    again = run_normalize([raw], out, crawl_time=CRAWL)
    assert again.up_to_date and hashes == []


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(tmp_path, pages, monkeypatch, outputs):
    """Only the mtime can be put back: the ctime moves with any write, so the stat differs and the
    file is hashed and reparsed."""
    monkeypatch.setattr(storage, "RACY_NS", 0)
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    _age(raw)
    run_normalize([raw], out, crawl_time=CRAWL)
    plain = raw / "one" / "plain.txt"
    before = plain.stat()
    text = plain.read_text()
    edited = text.replace("a", "o", 1)
    assert len(edited.encode()) == before.st_size and edited != text
    plain.write_text(edited)
    os.utime(plain, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (plain.stat().st_size, plain.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    summary = run_normalize([raw], out, crawl_time=CRAWL)
    assert (summary.modified, summary.reparsed) == (1, 1)
    records, _ = outputs(out)
    record = next(r for r in records if r["provenance"]["path"] == "one/plain.txt")
    assert record["text"].replace("\n", " ").split()[0] in edited


def test_a_recently_modified_input_is_hashed_again_and_a_touch_changes_nothing(tmp_path, pages, hashes):
    """Default rule: inputs written just now (within RACY_NS) get no stat in the index, so the next
    run hashes them; a touch (same bytes, new mtime) is hashed, found unchanged and not reparsed."""
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    assert all(entry["stat"] is None for entry in storage.load_index(out).values())
    hashes.clear()
    os.utime(raw / "one" / "agg.txt")
    again = run_normalize([raw], out, crawl_time=CRAWL)
    assert again.up_to_date and again.reparsed == 0
    assert "one/agg.txt" in hashes


def test_a_tampered_shard_with_its_size_and_mtime_put_back_is_rewritten(tmp_path, pages, monkeypatch):
    """Output shards once hashed are trusted by stat; a same-size edit moves the ctime, so the
    unchanged re-run hashes the shard again, finds it damaged and rewrites it."""
    monkeypatch.setattr(storage, "RACY_NS", 0)
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    assert run_normalize([raw], out, crawl_time=CRAWL).up_to_date  # hashes the shards, keeps their stats
    shard = out / "articles-00000.jsonl"
    good, before = shard.read_bytes(), shard.stat()
    shard.write_bytes(good.replace(b'"text":"', b'"text":"X', 1)[: len(good)])
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = run_normalize([raw], out, crawl_time=CRAWL)
    assert not again.up_to_date
    assert shard.read_bytes() == good


def test_tasks_are_cut_by_bytes_so_archives_do_not_pile_up_in_one_task():
    """1,000 small pages then 100 archives each as big as 1,000 pages: count-based shares would put
    all archives in the last task; byte shares spread them, in order, within the file cap."""
    sizes = [5_000] * 1000 + [5_000_000] * 100
    shares = runner.byte_shares(sizes, 16)
    assert sum(shares) == len(sizes) and all(0 < share <= engine.MAX_FILES_PER_TASK for share in shares)
    ends = [sum(shares[: i + 1]) for i in range(len(shares))]
    per_task = [sum(sizes[end - share : end]) for end, share in zip(ends, shares, strict=True)]
    assert max(per_task) <= 2 * sum(sizes) / 16  # no task holds much more than its share of bytes
    assert len(shares) >= 16
    assert runner.byte_shares([7], 4) == [1] and runner.byte_shares([], 4) == []


def test_the_plans_crawl_key_is_the_contexts_key(tmp_path):
    """`CrawlPlanner.key` (the plan's shortcut) gives the key the full crawl context gives, with
    and without --crawl-time, sidecars and crawl manifests."""
    from newsstance.normalize.crawltime import CrawlPlanner
    from newsstance.normalize.dates import parse_timestamp

    raw = tmp_path / "raw"
    (raw / "a").mkdir(parents=True)
    (raw / "b").mkdir()
    for name in ("a/plain.txt", "a/side.txt", "b/listed.txt", "b/plain.txt"):
        (raw / name).write_text("Dunmere pool reopens\nThe town pool reopened after repairs.\n")
        os.utime(raw / name, (1_767_000_000, 1_767_000_000))  # one mtime: the plain files share a key
    sidecar = {"crawled_at": "2026-03-03T10:00:00Z", "url": "https://dunmere.example/pool", "source": "Dunmere Post"}
    (raw / "a" / "side.txt.meta.json").write_bytes(orjson.dumps(sidecar))
    (raw / "b" / "crawl_manifest.jsonl").write_bytes(orjson.dumps({"path": "listed.txt", "crawled_at": "2026-03-01"}))
    for cli_time in (parse_timestamp(CRAWL), None):
        planner = CrawlPlanner(raw, cli_time)
        keys = set()
        for name in ("a/plain.txt", "a/side.txt", "b/listed.txt", "b/plain.txt"):
            path = str(raw / name)
            stat = os.stat(path)
            assert planner.key(path, stat) == planner.context(path, stat).key()
            keys.add(planner.key(path, stat))
        assert len(keys) == (2 if cli_time else 3)  # a sidecar's url and source set its file's key apart


def test_a_sidecar_added_beside_an_unchanged_input_reparses_it(tmp_path, pages, outputs):
    raw, out = _raw(tmp_path, pages), tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    sidecar = {"url": "https://dunmere.example/pool", "source": "Dunmere Post"}
    (raw / "one" / "plain.txt.meta.json").write_bytes(orjson.dumps(sidecar))
    summary = run_normalize([raw], out, crawl_time=CRAWL)
    assert (summary.reparsed, summary.modified) == (1, 0)
    records, _ = outputs(out)
    (record,) = [r for r in records if r["provenance"]["path"] == "one/plain.txt"]
    assert record["url"] == "https://dunmere.example/pool"
