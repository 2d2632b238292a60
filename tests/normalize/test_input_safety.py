"""Hostile inputs (issue 11): special files are never opened, symlinks never lead out of the input
root, symlinked folders inside it are walked, and a file changing while it is read is re-read or
quarantined - with its size and hash from one read."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from newsstance.normalize import sources
from newsstance.normalize.model import Reason

SECRET = "Warden's private ledger\nThe strongroom combination of the Velmora harbour office is 4-4-1-9.\n"


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Turn a hang (a blocked open() on a FIFO) into a test failure."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds}s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _reason(result, path: str) -> str:
    (entry,) = [q for q in result.quarantine if q["path"] == path]
    return entry["reason"]


def test_fifo_and_socket_are_quarantined_without_being_opened(normalize, pages, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    os.mkfifo(raw / "pipe.txt")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(raw / "s.sock"))
    try:
        with deadline(30):
            result = normalize({"good.txt": pages.plain})
    finally:
        server.close()
    assert _reason(result, "pipe.txt") == "not_a_file"
    assert _reason(result, "s.sock") == "not_a_file"
    assert [r["provenance"]["path"] for r in result.records] == ["good.txt"]
    assert result.summary.quarantined == {"not_a_file": 2}


def test_open_regular_refuses_a_fifo_immediately(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with deadline(10):
        outcome = sources.open_regular(tmp_path / "pipe", tmp_path)
    assert isinstance(outcome, sources.Unreadable) and outcome.reason == Reason.NOT_A_FILE


def test_symlinks_out_of_the_root_are_quarantined_not_followed(normalize, pages, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ledger.txt").write_text(SECRET, encoding="utf-8")
    (outside / "more").mkdir()
    (outside / "more" / "ledger2.txt").write_text(SECRET, encoding="utf-8")
    raw = tmp_path / "raw"
    raw.mkdir()
    os.symlink(outside / "ledger.txt", raw / "ledger.txt")
    os.symlink(outside / "more", raw / "more")
    os.symlink("/dev/null", raw / "null.txt")
    result = normalize({"good.txt": pages.plain})
    assert _reason(result, "ledger.txt") == "outside_root"
    assert _reason(result, "more") == "outside_root"  # the folder link is reported, never silently skipped
    assert _reason(result, "null.txt") == "outside_root"
    assert not any("strongroom" in r["text"] for r in result.records)
    assert [r["provenance"]["path"] for r in result.records] == ["good.txt"]


def test_symlinks_inside_the_root_are_walked_and_cycles_end(normalize, pages, tmp_path):
    raw = tmp_path / "raw"
    (raw / "real").mkdir(parents=True)
    (raw / "real" / "page.txt").write_text(pages.plain, encoding="utf-8")
    os.symlink(raw / "real", raw / "linked")  # a folder link inside the root
    os.symlink("..", raw / "real" / "up")  # a loop back to the root
    os.symlink(raw / "real" / "page.txt", raw / "alias.txt")  # a file link inside the root
    with deadline(30):
        result = normalize({"html/page.html": pages.html})
    paths = sorted(r["provenance"]["path"] for r in result.records)
    # each real folder is walked once, under its real path; the aliases are reported
    assert paths == ["alias.txt", "html/page.html", "real/page.txt"]
    assert result.quarantine == []
    walked_twice = sorted(w.split(":")[0] for w in result.summary.warnings if "already walked" in w)
    assert walked_twice == [str(raw / "linked"), str(raw / "real" / "up")]


def test_a_folder_reachable_only_through_a_link_inside_the_root_is_walked(normalize, pages, tmp_path):
    raw = tmp_path / "raw"
    (raw / ".store" / "2026").mkdir(parents=True)  # hidden: not walked by itself
    (raw / ".store" / "2026" / "page.txt").write_text(pages.plain, encoding="utf-8")
    os.symlink(raw / ".store" / "2026", raw / "march")
    result = normalize({})
    assert [r["provenance"]["path"] for r in result.records] == ["march/page.txt"]


def test_a_file_growing_during_its_read_is_read_again(normalize, pages, tmp_path, monkeypatch):
    """Deterministic: the file grows right after the first read pass, then stays put."""
    real_read = sources._read_once
    grown: list[int] = []

    def growing_read(handle, size, max_bytes):
        result = real_read(handle, size, max_bytes)
        if not grown:
            grown.append(size)
            with open(tmp_path / "raw" / "grow.txt", "a", encoding="utf-8") as extra:
                extra.write("The quay café will stay open late on Fridays.\n")
        return result

    monkeypatch.setattr(sources, "_read_once", growing_read)
    result = normalize({"grow.txt": pages.plain})
    final = (tmp_path / "raw" / "grow.txt").read_bytes()
    [record] = result.records
    assert "stay open late" in record["text"]  # the second, stable read was used
    import hashlib

    sha = hashlib.sha256(final).hexdigest()
    assert record["provenance"]["sha256"] == sha
    manifest = orjson.loads((result.out / "manifest.json").read_bytes())
    assert manifest["files"]["grow.txt"] == {**manifest["files"]["grow.txt"], "size": len(final), "sha256": sha}
    assert grown == [len(pages.plain.encode())]


def test_a_file_that_keeps_changing_is_quarantined(normalize, pages, tmp_path, monkeypatch):
    real_read = sources._read_once

    def always_growing(handle, size, max_bytes):
        result = real_read(handle, size, max_bytes)
        with open(tmp_path / "raw" / "busy.txt", "a", encoding="utf-8") as extra:
            extra.write("More lines from a crawler that is still writing.\n")
        return result

    monkeypatch.setattr(sources, "_read_once", always_growing)
    result = normalize({"busy.txt": pages.plain})
    assert result.records == []
    (entry,) = result.quarantine
    assert entry["reason"] == "changed_during_run" and entry["sha256"] is None
    assert "then" in entry["detail"]  # read twice


def test_read_stable_size_and_hash_come_from_one_read(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"Orrin tide tables\n" * 100)
    outcome = sources.read_stable(path, tmp_path, max_bytes=10_000)
    assert isinstance(outcome, sources.FileBytes)
    assert outcome.size == len(outcome.data) == path.stat().st_size
    over = sources.read_stable(path, tmp_path, max_bytes=100)
    assert isinstance(over, sources.TooLarge) and over.size == path.stat().st_size


@pytest.mark.parametrize("url", ["memory://corpus-a/raw"])
def test_fsspec_listing_and_reading_are_not_local(url, pages):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe(f"{url}/one.txt", pages.plain.encode())
    fs.pipe(f"{url}/sub/two.html", pages.html.encode())
    fs.pipe(f"{url}/sub/two.html.meta.json", b"{}")
    fs.pipe(f"{url}/.hidden.txt", b"x")
    try:
        listed = sources.discover_remote(url)
        assert [rel for _, rel in listed] == ["one.txt", "sub/two.html"]
        assert all(sources.is_remote(full) for full, _ in listed)
        outcome = sources.read_remote(listed[0][0], max_bytes=1_000_000)
        assert isinstance(outcome, sources.FileBytes) and outcome.data == pages.plain.encode()
        assert isinstance(sources.read_remote(listed[1][0], max_bytes=10), sources.TooLarge)
        missing = sources.read_remote(f"{url}/nope.txt", max_bytes=10)
        assert isinstance(missing, sources.Unreadable) and missing.reason == Reason.READ_ERROR
    finally:
        fs.rm(url.removeprefix("memory://"), recursive=True)
    assert not sources.is_remote("/data/raw") and not sources.is_remote("file:///data/raw")
