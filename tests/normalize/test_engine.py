"""The datatrove engine: the same records under every executor, Slurm scripts, crash safety,
remote (fsspec) inputs and one-line failures."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from newsstance.errors import EnvironmentProblem, UserError
from newsstance.normalize import engine, outfile
from newsstance.normalize.runner import run_normalize

CRAWL = "2026-03-14T09:30:00Z"
SAMPLE = Path(__file__).resolve().parents[2] / "corpus" / "raw" / "sample"


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


def _corpus(root: Path, pages, copies: int) -> Path:
    """Fictional pages in every format, varied so that they are distinct articles."""
    for i in range(copies):
        folder = root / f"site{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"agg{i:03d}.txt").write_text(pages.aggregator.replace("Quillon Bay", f"Quillon Bay {i}"))
        (folder / f"page{i:03d}.html").write_text(pages.html.replace("Orrin Quay", f"Orrin Quay {i}"))
        record = {**pages.newsplease, "url": f"https://penhallowdaily.example/{i}"}
        (folder / f"np{i:03d}.json").write_bytes(orjson.dumps(record))
    (root / "empty.txt").write_bytes(b"")
    return root


def _warc(path: Path, pages) -> Path:
    """A small WARC of fictional HTML responses (and one redirect), written with warcio."""
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for i in range(3):
            body = pages.html.replace("Orrin Quay", f"Orrin Quay {i}").encode()
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            uri = f"https://www.orrinlamp.example/culture/quay-{i}"
            record = writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http)
            writer.write_record(record)
        moved = StatusAndHeaders("301 Moved", [("Location", "https://www.orrinlamp.example/")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                "https://www.orrinlamp.example/old", "response", payload=io.BytesIO(b""), http_headers=moved
            )
        )
    return path


def test_ray_executor_gives_the_records_of_the_local_one(tmp_path, tmp_path_factory, monkeypatch, pages):
    ray = pytest.importorskip("ray")
    pytest.importorskip("warcio")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus / "sample")
    (corpus / "crawl").mkdir()
    _warc(corpus / "crawl" / "news.warc.gz", pages)
    local = run_normalize([corpus], tmp_path / "local", crawl_time=CRAWL, workers=2)
    ray_tmp = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths must stay under 108 bytes
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(ray_tmp), log_to_driver=False)
    try:
        remote = run_normalize([corpus], tmp_path / "ray", crawl_time=CRAWL, workers=2, executor="ray")
    finally:
        ray.shutdown()
    assert remote.articles == local.articles > 0
    warc_records = [
        line for line in _outputs(tmp_path / "local")["articles-00000.jsonl"].splitlines() if b"news.warc.gz" in line
    ]
    assert len(warc_records) == 3  # the three HTML responses; the redirect is quarantined
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


def test_slurm_dry_run_writes_valid_sbatch_scripts(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSSTANCE_SLURM_SCRIPTS", str(tmp_path / "scripts"))
    options = engine.EngineOptions(slurm_dry_run=True, slurm_partition="news", slurm_time="01:00:00")
    summary = run_normalize(
        [SAMPLE], tmp_path / "out", crawl_time=CRAWL, executor="slurm", engine_options=options, workers=2
    )
    assert "slurm dry run" in "\n".join(summary.render())
    assert not list((tmp_path / "out").glob("articles-*.jsonl"))  # nothing ran here
    scripts = sorted((tmp_path / "scripts").glob("*.sbatch"))
    assert scripts
    pickled = []
    for script in scripts:
        text = script.read_text()
        assert text.startswith("#!/bin/bash\n")
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, text
        if "launch_pickled_pipeline" in text:
            assert "#SBATCH --partition=news" in text and "#SBATCH --time=01:00:00" in text
            assert "#SBATCH --array=0-" in text
            pickled.append(text.split("launch_pickled_pipeline ", 1)[1].split()[0])
    assert len(pickled) == 4  # extract, collect, bands, commit
    assert all(Path(p).is_file() for p in pickled)

    # What the cluster would run: every array task of every stage, in dependency order.
    import dill
    from datatrove.executor import slurm

    monkeypatch.setattr(slurm, "expand_slurm_nodelist", lambda nodes: [nodes])  # `scontrol`: no Slurm here
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    monkeypatch.setenv("RUN_OFFSET", "0")
    for path in pickled:
        with open(path, "rb") as handle:
            executor = dill.load(handle)
        for rank in range(executor.world_size):
            monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(rank))
            executor.run()
    run_normalize([SAMPLE], tmp_path / "local", crawl_time=CRAWL)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "local")


def test_kill_9_mid_run_then_rerun_matches_a_clean_run(tmp_path, pages):
    psutil = pytest.importorskip("psutil")
    raw = _corpus(tmp_path / "raw", pages, 60)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "newsstance.cli", "normalize", str(raw), "--out", str(out)]
    command += ["--crawl-time", CRAWL, "--workers", "2", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    parts = out / ".cache" / "parts"
    while time.monotonic() < deadline and not (parts.is_dir() and any(parts.glob("*.rec.jsonl"))):
        time.sleep(0.05)
    children = psutil.Process(process.pid).children(recursive=True)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive  # the workers died with their parent
    assert not list(out.glob("articles-*.jsonl"))
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    run_normalize([raw], tmp_path / "clean", crawl_time=CRAWL)
    assert _outputs(out) == _outputs(tmp_path / "clean")
    assert not list((out / ".cache" / "runs").glob("*"))  # the killed run's work folder is gone


def test_inputs_on_an_in_memory_file_system(tmp_path, pages):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    files = {
        "one/agg.txt": pages.aggregator.encode(),
        "two/page.html": pages.html.encode(),
        "two/np.json": orjson.dumps(pages.newsplease),
        "two/empty.txt": b"",
        "two/.hidden.txt": b"not an input",
    }
    local = tmp_path / "raw"
    for name, data in files.items():
        memory.pipe(f"/newsstance-test/raw/{name}", data)
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    try:
        remote = run_normalize(["memory:///newsstance-test/raw"], tmp_path / "mem", crawl_time=CRAWL)
    finally:
        memory.rm("/newsstance-test", recursive=True)
    run_normalize([local], tmp_path / "disk", crawl_time=CRAWL)
    assert remote.files == 4 and remote.articles == 5
    assert _outputs(tmp_path / "mem") == _outputs(tmp_path / "disk")
    manifest = orjson.loads((tmp_path / "mem" / "manifest.json").read_bytes())
    assert sorted(manifest["files"]) == ["one/agg.txt", "two/empty.txt", "two/np.json", "two/page.html"]


def test_disk_full_is_one_line_and_keeps_the_old_output(tmp_path, pages, monkeypatch):
    raw = _corpus(tmp_path / "raw", pages, 2)
    out = tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL)
    before = _outputs(out)
    (raw / "site0" / "agg000.txt").write_text(pages.plain)

    def full(self, line):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outfile.HashingWriter, "write_line", full)
    monkeypatch.setattr(outfile.HashingWriter, "write_block", lambda self, data, records: full(self, data))
    with pytest.raises(UserError, match="no space left") as caught:
        run_normalize([raw], out, crawl_time=CRAWL)
    assert "\n" not in str(caught.value)
    monkeypatch.undo()
    assert _outputs(out) == before
    assert not list(out.glob(".staging-*"))


def test_a_missing_module_in_a_reader_stops_the_run(tmp_path, pages, monkeypatch):
    from newsstance.normalize import readers

    raw = _corpus(tmp_path / "raw", pages, 1)

    def broken(page, config, stats):
        raise EnvironmentProblem("the HTML reader needs the trafilatura package: pip install trafilatura")

    monkeypatch.setitem(readers.READERS, "html", broken)
    with pytest.raises(EnvironmentProblem, match="trafilatura"):
        run_normalize([raw], tmp_path / "out", crawl_time=CRAWL)
    assert not list((tmp_path / "out").glob("articles-*.jsonl"))  # not quarantined page by page


def test_a_rerun_with_one_changed_file_parses_only_that_file(tmp_path, pages):
    raw = _corpus(tmp_path / "raw", pages, 6)
    out = tmp_path / "out"
    first = run_normalize([raw], out, crawl_time=CRAWL, workers=2)
    (raw / "site1" / "agg001.txt").write_text(pages.aggregator.replace("Quillon Bay", "Quillon Cove"))
    second = run_normalize([raw], out, crawl_time=CRAWL, workers=2)
    assert (second.reparsed, second.modified, second.new, second.deleted) == (1, 1, 0, 0)
    assert second.articles == first.articles
    run_normalize([raw], tmp_path / "clean", crawl_time=CRAWL)
    assert _outputs(out) == _outputs(tmp_path / "clean")


def test_silver_stage_predicts_every_canonical_article_the_same_in_any_number_of_tasks(tmp_path, pages):
    from newsstance.normalize.silver import run_silver
    from newsstance.release.silver import silver_from_predictions

    raw = _corpus(tmp_path / "raw", pages, 2)
    run_normalize([raw], tmp_path / "norm", crawl_time=CRAWL, shard_size=3)
    canonical = {
        r["id"]: r
        for p in sorted((tmp_path / "norm").glob("articles-*.jsonl"))
        for r in map(orjson.loads, p.read_bytes().splitlines())
        if r["duplicate_of"] is None
    }
    one = run_silver(tmp_path / "norm", tmp_path / "one.jsonl", batch_size=2)
    two = run_silver(tmp_path / "norm", tmp_path / "two.jsonl", batch_size=3, workers=2)
    assert one == two == len(canonical)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    silver = silver_from_predictions(tmp_path / "one.jsonl", canonical)  # schema-checked, ids known
    assert set(silver.entities) == set(canonical)
    assert any(silver.entities.values())


def test_a_small_change_rewrites_only_the_shards_it_changes(tmp_path, pages):
    raw = _corpus(tmp_path / "raw", pages, 4)
    out = tmp_path / "out"
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    shards = sorted(out.glob("articles-*.jsonl"))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in shards}
    (raw / "site3" / "np003.json").write_bytes(orjson.dumps({**pages.newsplease, "title": "Glassworks hires"}))
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=4)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.glob("articles-*.jsonl"))}
    changed = [name for name in after if after[name][0] != before.get(name, (b"", 0))[0]]
    assert len(changed) == 1  # only the shard holding the edited record
    assert all(after[name] == before[name] for name in after if name not in changed)  # same bytes, not rewritten
    run_normalize([raw], tmp_path / "clean", crawl_time=CRAWL, shard_size=4)
    assert _outputs(out) == _outputs(tmp_path / "clean")
