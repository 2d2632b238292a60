"""Outputs at an fsspec URL: the run works in a local mirror and publishes shards, quarantine and
manifest to the URL - only what changed, the manifest last - checked on fsspec's in-memory file
system (so no path is assumed local) and, through the CLI, on a `file://` URL."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import orjson
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from newsstance.errors import UserError
from newsstance.normalize.runner import run_normalize

CRAWL = "2026-03-14T09:30:00Z"
SAMPLE = Path(__file__).resolve().parents[2] / "corpus" / "raw" / "sample"
PUBLISHED = ("articles-", "quarantine.jsonl", "manifest.json")


class CountingMemory(MemoryFileSystem):
    """The in-memory file system (same store as `memory://`) under its own protocol, recording
    every upload and raising on the `fail_at`-th one, as a dropped connection would."""

    protocol = "countmem"
    puts: ClassVar[list[str]] = []
    fail_at: ClassVar[int | None] = None

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("countmem://"):
            path = "memory://" + path.removeprefix("countmem://")
        return super()._strip_protocol(path)

    def put_file(self, lpath: Any, rpath: Any, *args: Any, **kwargs: Any) -> None:
        attempt = len(CountingMemory.puts) + 1
        CountingMemory.puts.append(str(rpath).rsplit("/", 1)[-1])
        if CountingMemory.fail_at == attempt:
            raise ConnectionResetError("simulated dropped connection")
        super().put_file(lpath, rpath, *args, **kwargs)


def _clear_memory() -> None:
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    CountingMemory.puts.clear()
    CountingMemory.fail_at = None


@pytest.fixture(autouse=True)
def memory(tmp_path, monkeypatch):
    """A clean in-memory file system, and mirrors kept under tmp_path (never ~/.cache)."""
    monkeypatch.setenv("NEWSSTANCE_REMOTE_CACHE", str(tmp_path / "mirrors"))
    fsspec.register_implementation("countmem", CountingMemory, clobber=True)
    _clear_memory()
    yield fsspec.filesystem("memory")
    _clear_memory()


def _raw(tmp_path: Path, pages) -> Path:
    raw = tmp_path / "raw"
    files = {
        "one/agg.txt": pages.aggregator,  # three articles
        "one/plain.txt": pages.plain,
        "two/np.json": orjson.dumps(pages.newsplease).decode(),
        "two/page.html": pages.html,
        "two/empty.txt": "",  # quarantined
    }
    for name, text in files.items():
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_text(text)
    return raw


def _remote(memory, folder: str = "/out") -> dict[str, bytes]:
    """Every file at the remote folder, by name."""
    if not memory.exists(folder):
        return {}
    return {name.rsplit("/", 1)[-1]: memory.cat_file(name) for name in memory.ls(folder, detail=False)}


def _local(out: Path) -> dict[str, bytes]:
    """The published files of a local output folder, by name."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and p.name.startswith(PUBLISHED)}


def _records(files: dict[str, bytes]) -> list[dict[str, Any]]:
    shards = sorted(name for name in files if name.startswith("articles-"))
    return [orjson.loads(line) for name in shards for line in files[name].splitlines()]


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {name for name, data in after.items() if before.get(name) != data}


def _both(raw: Path, tmp_path: Path, url: str = "countmem://out", **options: Any):
    """Normalise into the URL and, as the reference, into a plain local folder."""
    options = {"crawl_time": CRAWL, "shard_size": 2, **options}
    summary = run_normalize([raw], url, **options)
    run_normalize([raw], tmp_path / "local", **options)
    return summary, _local(tmp_path / "local")


def test_the_remote_holds_what_a_local_run_writes(tmp_path, pages, memory):
    raw = _raw(tmp_path, pages)
    summary, local = _both(raw, tmp_path, "memory://out")
    remote = _remote(memory)
    assert sorted(remote) == sorted(local)  # no .cache, lock, staging or temporary file published
    assert len([name for name in remote if name.startswith("articles-")]) == 3
    assert _records(remote) == _records(local) and len(_records(remote)) == 6
    assert remote["quarantine.jsonl"] == local["quarantine.jsonl"]
    manifest = orjson.loads(remote["manifest.json"])
    assert manifest["outputs"] == orjson.loads(local["manifest.json"])["outputs"]
    for name, info in manifest["outputs"].items():
        assert hashlib.sha256(remote[name]).hexdigest() == info["sha256"]
    lines = summary.render()
    assert lines[0].endswith("-> memory://out")
    mirror = [line for line in lines if line.startswith("local mirror ")]
    assert len(mirror) == 1 and str(tmp_path / "mirrors") in mirror[0]
    assert Path(mirror[0].split()[2], "manifest.json").read_bytes() == remote["manifest.json"]


def test_an_unchanged_rerun_uploads_nothing(tmp_path, pages, memory):
    raw = _raw(tmp_path, pages)
    run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2)
    assert sorted(CountingMemory.puts) == sorted(f".newsstance-upload-{name}" for name in _remote(memory))
    before = _remote(memory)
    CountingMemory.puts.clear()
    summary = run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2)
    assert summary.up_to_date and CountingMemory.puts == []
    assert _remote(memory) == before
    assert "remote       countmem://out: up to date, nothing uploaded" in "\n".join(summary.render())


def test_a_change_uploads_only_what_changed_and_removes_vanished_shards(tmp_path, pages, memory):
    raw = _raw(tmp_path, pages)
    _, first = _both(raw, tmp_path)

    (raw / "two" / "page.html").write_text(pages.html.replace("paper boats", "paper lanterns"))
    CountingMemory.puts.clear()
    _, second = _both(raw, tmp_path)
    expected = _changed(first, second)
    assert expected == {"articles-00002.jsonl", "manifest.json"}  # the reference run rewrote only these
    assert sorted(CountingMemory.puts) == sorted(f".newsstance-upload-{name}" for name in expected)
    assert CountingMemory.puts[-1] == ".newsstance-upload-manifest.json"
    assert _remote(memory) == second

    (raw / "two" / "page.html").unlink()
    (raw / "two" / "np.json").unlink()
    CountingMemory.puts.clear()
    _, third = _both(raw, tmp_path)
    assert "articles-00002.jsonl" not in third
    assert _remote(memory) == third  # the vanished shard is gone from the remote too
    assert sorted(CountingMemory.puts) == sorted(f".newsstance-upload-{name}" for name in _changed(second, third))


@pytest.mark.parametrize("fail_at", [1, 3])
def test_an_interrupted_upload_leaves_the_old_manifest_consistent_and_the_next_run_finishes(
    tmp_path, pages, memory, fail_at
):
    raw = _raw(tmp_path, pages)
    _both(raw, tmp_path)
    before = _remote(memory)
    (raw / "one" / "plain.txt").write_text(pages.plain.replace("nine in the evening", "ten at night"))
    (raw / "two" / "page.html").write_text(pages.html.replace("paper boats", "paper lanterns"))
    CountingMemory.puts.clear()
    CountingMemory.fail_at = fail_at  # 3 uploads: two shards, then the manifest
    with pytest.raises(UserError, match=r"failed .*the remote still holds its previous outputs") as caught:
        run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2)
    assert "\n" not in str(caught.value)
    visible = {name: data for name, data in _remote(memory).items() if not name.startswith(".")}
    assert visible == before  # the old manifest and exactly the shards it names, byte for byte
    for name, info in orjson.loads(visible["manifest.json"])["outputs"].items():
        assert hashlib.sha256(visible[name]).hexdigest() == info["sha256"]

    CountingMemory.fail_at = None
    CountingMemory.puts.clear()
    summary = run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2)
    assert summary.up_to_date  # the mirror was complete: only the sync was left to do
    run_normalize([raw], tmp_path / "local", crawl_time=CRAWL, shard_size=2)
    assert _remote(memory) == _local(tmp_path / "local")  # no temporary file left behind either
    assert len(CountingMemory.puts) == 3


def test_a_new_machine_fetches_the_remote_outputs_and_uploads_only_the_manifest(tmp_path, pages, memory):
    raw = _raw(tmp_path, pages)
    run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2)
    before = _remote(memory)
    shutil.rmtree(tmp_path / "mirrors")
    CountingMemory.puts.clear()
    summary = run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2)
    assert "(new: fetched 5 file(s) from countmem://out)" in "\n".join(summary.render())
    assert (summary.new, summary.modified, summary.deleted, summary.reparsed) == (0, 0, 0, 5)
    assert CountingMemory.puts == [".newsstance-upload-manifest.json"]  # the shards came out byte-identical
    after = _remote(memory)
    assert {name for name in after if after[name] != before[name]} == {"manifest.json"}
    assert _records(after) == _records(before)
    CountingMemory.puts.clear()
    assert run_normalize([raw], "countmem://out", crawl_time=CRAWL, shard_size=2).up_to_date
    assert CountingMemory.puts == []


def test_outputs_inside_the_input_url_are_not_read_back(pages, memory):
    memory.pipe("/corpus/agg.txt", pages.aggregator.encode())
    memory.pipe("/corpus/plain.txt", pages.plain.encode())
    first = run_normalize(["memory://corpus"], "memory://corpus/normalized", crawl_time=CRAWL)
    assert memory.exists("/corpus/normalized/manifest.json")
    second = run_normalize(["memory://corpus"], "memory://corpus/normalized", crawl_time=CRAWL)
    assert (first.files, second.files, second.up_to_date) == (2, 2, True)


def test_slurm_commit_job_publishes(tmp_path, memory, monkeypatch):
    from datatrove.executor import slurm

    from newsstance.normalize import engine

    monkeypatch.setenv("NEWSSTANCE_SLURM_SCRIPTS", str(tmp_path / "scripts"))
    options = engine.EngineOptions(slurm_dry_run=True)
    run_normalize([SAMPLE], "memory://out", crawl_time=CRAWL, executor="slurm", engine_options=options)
    assert _remote(memory) == {}  # submitted, nothing ran yet
    import dill

    monkeypatch.setattr(slurm, "expand_slurm_nodelist", lambda nodes: [nodes])
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    monkeypatch.setenv("RUN_OFFSET", "0")
    for script in sorted((tmp_path / "scripts").glob("*.sbatch")):
        text = script.read_text()
        if "launch_pickled_pipeline " not in text:
            continue
        with open(text.split("launch_pickled_pipeline ", 1)[1].split()[0], "rb") as handle:
            executor = dill.load(handle)
        for rank in range(executor.world_size):
            monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(rank))
            executor.run()
    run_normalize([SAMPLE], tmp_path / "local", crawl_time=CRAWL)
    assert _remote(memory) == _local(tmp_path / "local")


class UnreachableMemory(MemoryFileSystem):
    """A file system whose server does not answer."""

    protocol = "downmem"

    def isfile(self, path: Any) -> bool:
        raise ConnectionRefusedError(111, "Connection refused")


def test_an_unreachable_or_unknown_output_url_is_a_one_line_error(tmp_path, pages):
    raw = _raw(tmp_path, pages)
    fsspec.register_implementation("downmem", UnreachableMemory, clobber=True)
    with pytest.raises(UserError, match=r"^--out downmem://out cannot be reached: ConnectionRefusedError") as down:
        run_normalize([raw], "downmem://out", crawl_time=CRAWL)
    with pytest.raises(UserError, match=r"^--out nosuchproto://x: .*nosuchproto") as unknown:
        run_normalize([raw], "nosuchproto://x", crawl_time=CRAWL)
    assert "\n" not in str(down.value) + str(unknown.value)
    assert not (tmp_path / "mirrors").exists()


def _cli(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSSTANCE_REMOTE_CACHE": str(cache)}
    command = [sys.executable, "-m", "newsstance.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_with_a_file_url_and_with_an_unknown_protocol(tmp_path, pages):
    raw = _raw(tmp_path, pages)
    url = (tmp_path / "published").as_uri()
    args = ["normalize", str(raw), "--out", url, "--crawl-time", CRAWL, "-q"]
    first = _cli(*args, cwd=tmp_path, cache=tmp_path / "mirrors")
    assert first.returncode == 0, first.stderr
    assert f"local mirror {tmp_path / 'mirrors'}" in first.stdout
    run_normalize([raw], tmp_path / "local", crawl_time=CRAWL)
    assert _local(tmp_path / "published") == _local(tmp_path / "local")
    assert sorted(p.name for p in (tmp_path / "published").iterdir()) == sorted(_local(tmp_path / "local"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "published").iterdir()}
    second = _cli(*args, cwd=tmp_path, cache=tmp_path / "mirrors")
    assert second.returncode == 0 and "0 changed" in second.stdout and "nothing uploaded" in second.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "published").iterdir()} == mtimes

    mirrors = sorted((tmp_path / "mirrors").iterdir())
    misuse = _cli("normalize", str(raw), "--out", "nosuchproto://x", cwd=tmp_path, cache=tmp_path / "mirrors")
    assert misuse.returncode == 2
    assert misuse.stderr.startswith("error: --out nosuchproto://x") and misuse.stderr.count("\n") == 1, misuse.stderr
    assert "Traceback" not in misuse.stderr
    assert sorted((tmp_path / "mirrors").iterdir()) == mirrors  # refused before any mirror was made


class VersionedMemory(MemoryFileSystem):
    """The in-memory file system with an object store's ETag (a digest of the bytes, as S3 gives
    for a single-part upload) in `info`, counting the objects it opens for reading."""

    protocol = "etagmem"
    reads: ClassVar[list[str]] = []

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("etagmem://"):
            path = "memory://" + path.removeprefix("etagmem://")
        return super()._strip_protocol(path)

    def info(self, path: Any, **kwargs: Any) -> dict[str, Any]:
        info = dict(super().info(path, **kwargs))
        if info.get("type") == "file":
            info["ETag"] = '"' + hashlib.md5(super().cat_file(path), usedforsecurity=False).hexdigest() + '"'
        return info

    def _open(self, path: Any, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode:
            VersionedMemory.reads.append(str(path).rsplit("/", 1)[-1])
        return super()._open(path, mode, *args, **kwargs)


def test_remote_inputs_with_a_version_are_not_downloaded_again_on_a_rerun(tmp_path, pages, memory):
    """An unchanged object (same ETag) is not read again; a rewritten one is, and only it."""
    fsspec.register_implementation("etagmem", VersionedMemory, clobber=True)
    raw = _raw(tmp_path, pages)
    for path in sorted(p for p in raw.rglob("*") if p.is_file()):
        memory.pipe(f"/corpus/{path.relative_to(raw).as_posix()}", path.read_bytes())
    VersionedMemory.reads.clear()
    first = run_normalize(["etagmem://corpus"], tmp_path / "out", crawl_time=CRAWL)
    assert first.files == 5 and len(set(VersionedMemory.reads)) == 5
    VersionedMemory.reads.clear()
    again = run_normalize(["etagmem://corpus"], tmp_path / "out", crawl_time=CRAWL)
    assert again.changed == 0 and VersionedMemory.reads == []
    memory.pipe("/corpus/one/plain.txt", pages.plain.replace("Penhallow", "Quillon").encode() + b"\n")
    changed = run_normalize(["etagmem://corpus"], tmp_path / "out", crawl_time=CRAWL)
    assert changed.modified == 1 and set(VersionedMemory.reads) == {"plain.txt"}
