"""A full disk during a direct write is the one-line error, and the previous output stays."""

import errno
import os

import pytest

from newsstance.errors import UserError
from newsstance.normalize.runner import run_normalize


def test_enospc_in_direct_write(tmp_path, pages, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text(pages.plain)
    out = tmp_path / "out"
    run_normalize([raw], out, crawl_time="2026-03-14T09:30:00Z")
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    (raw / "b.txt").write_text(pages.aggregator)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(UserError, match="no space left") as caught:
        run_normalize([raw], out, crawl_time="2026-03-14T09:30:00Z")
    monkeypatch.undo()
    assert "\n" not in str(caught.value)
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before
    assert not list(out.glob(".staging-*"))
