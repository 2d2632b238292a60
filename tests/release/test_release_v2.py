"""Gold default, versions, kept configs, figures, Croissant, stance-aware splits and build faults."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from huggingface_hub import DatasetCard

from newsstance.errors import UserError
from newsstance.release.build import build_release
from newsstance.release.options import resolve_gold
from newsstance.release.splits import assign_splits
from newsstance.release.staging import OWNER_FILE, STAGING_PREFIX, VERIFY_PREFIX, clean_stale


def build(files: Any, version: str | None = None, **kwargs: Any):
    return build_release(
        version=version,
        out=files.out,
        articles=[files.articles],
        gold=files.gold,
        splits=files.splits,
        progress=False,
        **kwargs,
    )


# --- one gold default ------------------------------------------------------------


def test_gold_default_prefers_adjudicated_gold_with_records_else_the_sample(isolated_project: Path) -> None:
    sample = isolated_project / "annotations" / "sample" / "gold.jsonl"
    sample.parent.mkdir(parents=True)
    sample.write_text('{"article_id": "a"}\n')
    adjudicated = isolated_project / "annotations" / "gold.jsonl"
    adjudicated.write_text("\n")  # an empty adjudication never hides the sample gold
    assert resolve_gold().kind == "sample"
    adjudicated.write_text('{"article_id": "b"}\n')
    choice = resolve_gold()
    assert (choice.kind, choice.path) == ("adjudicated", adjudicated)
    assert "adjudicated" in choice.describe()
    with pytest.raises(UserError, match="gold file not found") as error:
        resolve_gold(isolated_project / "nope.jsonl")
    assert "newsstance gold" not in str(error.value)


def test_no_gold_at_all_names_commands_that_exist(isolated_project: Path) -> None:
    from newsstance.cli import app

    with pytest.raises(UserError) as error:
        resolve_gold()
    message = str(error.value)
    assert "`newsstance adjudicate`" in message and "newsstance gold" not in message
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert "adjudicate" in commands


# --- versions -----------------------------------------------------------------------


def test_identical_rebuild_builds_nothing_and_left_out_silver_is_kept(corpus, helpers, tmp_path: Path) -> None:
    files = corpus()
    predictions = tmp_path / "silver.jsonl"
    canonical = [a for a in files.article_records if a.get("duplicate_of") is None]
    helpers.write_jsonl(predictions, [{"id": a["id"], "entities": [], "stances": {}} for a in canonical])
    first = build(files, silver_predictions=predictions)
    assert (first.version, first.built) == ("1.0.0", True)
    again = build(files)  # no silver option: the silver config is kept, nothing changed
    assert (again.version, again.built) == ("1.0.0", False)
    assert sorted(p.name for p in files.out.iterdir() if not p.name.startswith(".")) == ["1.0.0"]

    licence = build(files, license_id="cc-by-4.0")
    assert (licence.version, licence.bump) == ("1.0.1", "patch")
    assert any("licence changed" in r for r in licence.reasons)
    manifest = orjson.loads((licence.path / "manifest.json").read_bytes())
    assert set(manifest["configs"]) == {"default", "articles", "silver"} and manifest["kept"] == {"silver": "1.0.0"}

    dropped = build(files, license_id="cc-by-4.0", drop_configs=["silver"])
    assert (dropped.version, dropped.bump) == ("2.0.0", "major")
    assert dropped.reasons == ["config `silver` dropped"]
    diff = orjson.loads((dropped.path / "diff.json").read_bytes())
    assert diff["reasons"] == ["config `silver` dropped"] and diff["configs_removed"] == ["silver"]
    card = (dropped.path / "README.md").read_text()
    assert "**major** change" in card and "config `silver` dropped" in card


def test_new_train_article_is_a_minor_bump_with_per_split_counts(corpus, helpers) -> None:
    files = corpus()
    build(files)
    frozen = {r["id"]: r["split"] for r in map(orjson.loads, files.splits.read_bytes().splitlines())}
    stories = helpers.base_stories()
    extra = {
        "key": "harbour-repairs",
        "title": "Harbour repairs begin in Ostwick",
        "text": "Crews began repairing the Ostwick harbour wall on Monday.",
        "source": "Brackwater Courier",
        "published_at": "2031-03-14T08:00:00Z",
        "entities": [("Ostwick", "GPE", None)],
        "stances": {"tidewater_dam": "not_about", "carbon_levy": "not_about"},
    }
    helpers.write_jsonl(
        files.splits,
        [{"id": i, "split": s} for i, s in frozen.items()]
        + [{"id": helpers.article_id("harbour-repairs"), "split": "train"}],
    )
    second = build(corpus([*stories, extra], name="grown"))
    assert second.bump == "minor", second.reasons
    assert second.version == "1.1.0"
    diff = orjson.loads((second.path / "diff.json").read_bytes())
    assert diff["rows"]["default"]["train"]["added"] == 1
    assert diff["rows"]["articles"]["train"]["added"] == 1


# --- card, figures, Croissant ------------------------------------------------------------


def test_card_figures_croissant_and_licence_fields(corpus) -> None:
    files = corpus()
    result = build(files)
    card = DatasetCard.load(result.path / "README.md")
    assert card.data.license == "cc0-1.0"
    evals = card.data.to_dict()["train-eval-index"]
    assert evals[0]["col_mapping"] == {"tokens": "tokens", "ner_tags": "tags"}
    assert evals[0]["metrics"][0]["type"] == "seqeval"
    infos = card.data.to_dict()["dataset_info"]
    assert all(i["download_size"] > 0 and i["dataset_size"] > 0 for i in infos)
    figures = sorted((result.path / "figures").glob("*.png"))
    names = {f.stem for f in figures}
    assert {"entity-types", "mention-stance", "document-stance", "articles-per-outlet", "articles-per-month"} <= names
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures/{figure.name})" in card.text
    from newsstance.scheme import load_scheme

    scheme = load_scheme()
    for index, name in enumerate(scheme.entity_names):  # the label-id table next to the label list
        assert f"| {index} | `{name}` |" in card.text
    for index, name in enumerate(scheme.bio_tags):
        assert f"| {index} | `{name}` |" in card.text
    assert "| -1 | (none) | no stance given |" in card.text
    manifest = orjson.loads((result.path / "manifest.json").read_bytes())
    assert all(not Path(entry["path"]).is_absolute() for entry in manifest["inputs"]["articles"])
    assert "figures/entity-types.png" in {f["path"] for f in manifest["files"]}


def test_card_outlets_merge_domain_and_name(corpus, helpers) -> None:
    stories = helpers.base_stories()
    stories[2] = dict(stories[2], source="quelltonledger.example")
    for index in (0, 2, 6):
        stories[index] = dict(
            stories[index],
            extra={**stories[index].get("extra", {}), "url": f"https://www.quelltonledger.example/{index}"},
        )
    result = build(corpus(stories))
    card = (result.path / "README.md").read_text()
    sources = card[card.index("#### Data Collection") : card.index("#### Who are the source")]
    rows = [line for line in sources.splitlines() if line.startswith("| The Quellton Ledger")]
    assert len(rows) == 1 and "`quelltonledger.example`" in rows[0]
    assert "| quelltonledger.example" not in sources


def test_croissant_validates_with_mlcroissant(corpus) -> None:
    mlc = pytest.importorskip("mlcroissant")
    result = build(corpus())
    document = orjson.loads((result.path / "croissant.json").read_bytes())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert {r["@id"] for r in document["recordSet"]} == {"default", "articles"}
    mlc.Dataset(jsonld=str(result.path / "croissant.json"))  # raises ValidationError on any issue


# --- splits ---------------------------------------------------------------------------------


def test_splitter_puts_every_stance_class_in_validation_and_test_when_possible() -> None:
    ids = [f"a{i:02d}" for i in range(20)]
    labels = {i: {"t=neutral"} for i in ids}
    labels["a03"] = {"t=favor"}
    labels["a07"] = {"t=favor"}
    labels["a11"] = {"t=favor"}
    labels["a05"] = {"t=against"}  # a single example cannot be everywhere: a warning says so
    warnings: list[str] = []
    result = assign_splits({i: i for i in ids}, {}, set(ids), (0.8, 0.1, 0.1), labels, warnings)
    for split in ("validation", "test"):
        assert any("t=favor" in labels[i] for i, s in result.split_of.items() if s == split), split
    assert any("t=favor" in labels[i] for i, s in result.split_of.items() if s == "train")
    assert any("t=against" in w for w in warnings)
    frozen = {"a03": {"id": "a03", "split": "train"}, "a07": {"id": "a07", "split": "train"}}
    pinned = assign_splits({i: i for i in ids}, frozen, set(ids), (0.8, 0.1, 0.1), labels, [])
    assert pinned.split_of["a03"] == pinned.split_of["a07"] == "train"  # frozen splits never move


# --- build faults -----------------------------------------------------------------------------


def test_disk_full_is_one_line_and_leaves_nothing(corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    files = corpus()
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        if len(data) > 64:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(UserError, match="disk full") as error:
        build(files)
    assert "\n" not in str(error.value)
    assert not [p for p in files.out.iterdir() if p.name != ".gitkeep"] if files.out.exists() else True
    assert not files.splits.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_out_is_one_line(corpus) -> None:
    files = corpus()
    files.out.mkdir()
    files.out.chmod(0o500)
    try:
        with pytest.raises(UserError, match=r"permission denied|read-only"):
            build(files)
    finally:
        files.out.chmod(0o700)


@pytest.mark.parametrize(
    ("code", "where", "message"),
    [
        (errno.EROFS, "owned_tempdir", "read-only filesystem: pass --out"),
        (errno.EACCES, "owned_tempdir", "permission denied on .*: pass --out to a folder you can write"),
        (errno.EXDEV, "publish_dir", "across filesystems: pass --out on the same disk"),
    ],
)
def test_os_errors_of_the_out_folder_are_one_line(
    corpus, monkeypatch: pytest.MonkeyPatch, code, where, message
) -> None:
    """The errors the OS gives for a read-only mount, an unwritable --out (root ignores chmod here, so it
    is injected) and a cross-device rename: one line each, nothing left behind, splits untouched."""
    import newsstance.release.build as build_module

    def fail(*args: Any, **kwargs: Any) -> Path:
        raise OSError(code, os.strerror(code), str(args[0]))

    files = corpus()
    monkeypatch.setattr(build_module, where, fail)
    with pytest.raises(UserError, match=message) as error:
        build(files)
    assert "\n" not in str(error.value)
    assert not files.splits.exists()
    assert not [p for p in files.splits.parent.iterdir() if p.name.startswith(".splits")]
    if files.out.exists():
        assert not list(files.out.iterdir())


def test_unreadable_input_is_one_line(corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    import newsstance.release.rows as rows_module

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", "corpus/articles.jsonl")

    monkeypatch.setattr(rows_module, "read_jsonl", denied)
    with pytest.raises(UserError, match=r"cannot read corpus/articles\.jsonl: Permission denied"):
        build(corpus())


def test_cross_device_out_builds_with_an_atomic_rename(corpus, tmp_path: Path) -> None:
    """--out on another filesystem than the corpus and the temp dir: /dev/shm is a tmpfs when present."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no separate writable tmpfs here")
    import shutil
    import tempfile

    other = Path(tempfile.mkdtemp(dir=shm))
    try:
        files = corpus()
        result = build_release(
            out=other / "dist", articles=[files.articles], gold=files.gold, splits=files.splits, progress=False
        )
        assert result.built and (other / "dist" / "1.0.0" / "README.md").is_file()
        assert not [p for p in (other / "dist").iterdir() if p.name.startswith(".")]
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_stale_staging_of_a_dead_owner_is_cleaned_a_live_one_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{STAGING_PREFIX}x"
    dead.mkdir()
    (dead / OWNER_FILE).write_bytes(orjson.dumps({"pid": 2**22 + 12345, "start": 1.0}))
    verify = tmp_path / f"{VERIFY_PREFIX}y"
    verify.mkdir()
    (verify / OWNER_FILE).write_bytes(orjson.dumps({"pid": 2**22 + 12346, "start": 1.0}))
    from newsstance.release.staging import owned_tempdir

    alive = owned_tempdir(tmp_path, STAGING_PREFIX)
    removed = clean_stale(tmp_path)
    assert sorted(removed) == sorted([dead, verify])
    assert alive.is_dir()


def test_kill_9_during_a_build_then_the_next_build_cleans_up(corpus, tmp_path: Path, isolated_project: Path) -> None:
    files = corpus()
    script = tmp_path / "slow_build.py"
    script.write_text(
        "import sys, time\n"
        "import newsstance.release.build as b\n"
        "real = b.write_staged\n"
        "def slow(*a, **k):\n"
        "    print('staged', flush=True); time.sleep(60)\n"
        "b.write_staged = slow\n"
        f"b.build_release(out={str(files.out)!r}, articles=[{str(files.articles)!r}], gold={str(files.gold)!r}, "
        f"splits={str(files.splits)!r}, progress=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == b"staged"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    leftovers = [p for p in files.out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert leftovers, "the killed build left its staging folder"
    time.sleep(0.05)
    result = build(files)
    assert result.built
    assert not [p for p in files.out.iterdir() if p.name.startswith(".newsstance-")]
    assert not (isolated_project / "benchmarks" / "results").exists()


# --- labels come from the scheme ------------------------------------------------------------------

RENAMES = {
    "PERSON": "HUMAN",
    "ORG": "BODY",
    "GPE": "POLITY",
    "favor": "pro",
    "against": "contra",
    "neutral": "mixed",
    "not_about": "off_topic",
}


def test_renamed_scheme_labels_build_and_reach_card_croissant_and_dry_run(
    corpus, helpers, isolated_project: Path
) -> None:
    import re
    import shutil

    from typer.testing import CliRunner

    from newsstance.cli import app
    from newsstance.scheme import load_scheme, sync_derived_files

    text = (isolated_project / "annotations" / "scheme.yaml").read_text()
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    (isolated_project / "annotations" / "scheme.yaml").write_text(text)
    schema = isolated_project / "schema"
    target = schema.resolve()
    schema.unlink()
    shutil.copytree(target, schema)
    sync_derived_files(load_scheme(), isolated_project)

    def rename(value: Any) -> Any:
        return RENAMES.get(value, value) if isinstance(value, str) else value

    stories = []
    for story in helpers.base_stories():
        story = dict(story)
        if story.get("entities") is not None:
            story["entities"] = [(s, rename(label), rename(stance)) for s, label, stance in story["entities"]]
            story["stances"] = {t: rename(v) for t, v in story["stances"].items()}
        stories.append(story)
    result = build(corpus(stories))
    card = (result.path / "README.md").read_text()
    for new in ("HUMAN", "B-HUMAN", "pro", "contra", "off_topic"):
        assert f"| `{new}` |" in card, new
    for old in ("PERSON", "B-PERSON", "favor", "not_about"):
        assert f"| `{old}` |" not in card, old
    croissant = (result.path / "croissant.json").read_text()
    assert "=HUMAN" in croissant and "=pro" in croissant and "=PERSON" not in croissant
    outcome = CliRunner().invoke(
        app,
        ["publish", "fict-org/renamed", "--version", result.version, "--dist", str(result.path.parent), "--dry-run"],
    )
    assert outcome.exit_code == 0, outcome.output


def test_leaderboard_written_only_with_its_release_and_reused_by_a_plain_rebuild(
    corpus, monkeypatch: pytest.MonkeyPatch, isolated_project: Path
) -> None:
    """`make run` builds with benchmarks; a failed build leaves no leaderboard file; `build` without the
    flag afterwards reuses the release's leaderboard and builds nothing."""
    import newsstance.release.build as build_module
    from newsstance.release.integrity import IntegrityError

    files = corpus()
    results = isolated_project / "benchmarks" / "results"
    real_verify = build_module.verify_with_fresh_cache

    def broken(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError("injected failure after the benchmarks ran")

    monkeypatch.setattr(build_module, "verify_with_fresh_cache", broken)
    with pytest.raises(UserError, match="injected failure"):
        build(files, with_benchmarks=True)
    assert not results.exists() or not list(results.iterdir())
    monkeypatch.setattr(build_module, "verify_with_fresh_cache", real_verify)
    first = build(files, with_benchmarks=True)
    assert (results / "leaderboard-1.0.0.json").is_file()
    assert (first.path / "leaderboard.json").is_file()
    card = (first.path / "README.md").read_text()
    assert "No benchmark results were recorded" not in card
    again = build(files)
    assert (again.version, again.built) == ("1.0.0", False)


def test_streamed_configs_are_split_into_capped_shards_that_load(corpus) -> None:
    import datasets
    import pyarrow.parquet as pq

    files = corpus()
    limits = {"max_rows_per_shard": 2}
    result = build(files, **limits)
    manifest = orjson.loads((result.path / "manifest.json").read_bytes())
    train_files = manifest["configs"]["articles"]["train"]["files"]
    assert len(train_files) > 1
    assert all("-of-" in name for name in train_files)
    assert all(pq.read_metadata(result.path / name).num_rows <= 2 for name in train_files)
    loaded = datasets.load_dataset(str(result.path), "articles")
    canonical = {a["id"] for a in files.article_records if a.get("duplicate_of") is None}
    assert sorted(i for split in loaded for i in loaded[split]["id"]) == sorted(canonical)


def test_shard_writer_caps_bytes_per_file_and_names_files_by_content(tmp_path: Path) -> None:
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from newsstance.release.shards import ShardWriter

    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    writer = ShardWriter(tmp_path, "articles", "train", schema, max_rows=1000, max_bytes=5000)
    texts = [f"{i:04d}" + "lorem ipsum dolor " * (100 + i) for i in range(12)]  # ~2 kB each, poorly compressible
    for i, text in enumerate(texts):
        writer.write(pa.table({"id": [str(i)], "text": [text]}, schema=schema))
    names = writer.close()
    assert len(names) > 1
    read_back = [t for name in names for t in pq.read_table(tmp_path / name).column("text").to_pylist()]
    assert read_back == texts
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert name.endswith(f"-{hashlib.sha256(data).hexdigest()[:8]}.parquet")
        # closed once its row groups reach 5000 bytes (the footer with the schema comes on top)
        assert pq.read_metadata(tmp_path / name).num_rows <= 3


def test_verification_caches_older_builds_left_in_the_temp_dir_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from newsstance.release.staging import LEGACY_VERIFY_PREFIX, ORPHAN_GRACE_SECONDS, clean_all_stale

    temp = tmp_path / "tmp"
    old, fresh = temp / f"{LEGACY_VERIFY_PREFIX}old", temp / f"{LEGACY_VERIFY_PREFIX}fresh"
    for folder in (old, fresh):
        (folder / "cache").mkdir(parents=True)
    past = time.time() - ORPHAN_GRACE_SECONDS - 60
    os.utime(old, (past, past))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert clean_all_stale(tmp_path / "dist") == [old]
    assert fresh.is_dir()
