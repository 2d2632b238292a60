"""No label name is hard-coded: rename every label of the scheme and run the pipeline through the real CLI.

A temporary project root (`NEWSSTANCE_ROOT`) gets the sample corpus, a scheme whose entity labels,
stance labels, "not about" answer, polar labels and targets all have new names, the derived files
from `newsstance scheme sync`, and the sample gold rewritten with the new names. Then normalize ->
build (with the leaderboard) -> baseline (each) -> evaluate (and --compare) -> publish --dry-run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
NEWSSTANCE = str(Path(sys.executable).parent / "newsstance")

ENTITIES = {
    "PERSON": "WHO",
    "NORP": "GROUP",
    "ORG": "BODY",
    "GPE": "POLITY",
    "LOC": "PLACE",
    "EVENT": "HAPPENING",
    "MISC": "OTHER_THING",
}
STANCES = {"favor": "pro", "against": "contra", "neutral": "balanced"}
NOT_ABOUT = "off_topic"
TARGETS = {"tidewater_dam": "dam_project", "carbon_levy": "emissions_tax"}
SPACY_MAP = {"PERSON": "WHO", "NORP": "GROUP", "ORG": "BODY", "GPE": "POLITY", "LOC": "PLACE", "EVENT": "HAPPENING"}


def renamed_scheme(source: Path) -> dict:
    scheme = yaml.safe_load(source.read_text(encoding="utf-8"))
    for label in scheme["entity_labels"]:
        label["name"] = ENTITIES[label["name"]]
    for label in scheme["stance_labels"]:
        label["name"] = STANCES[label["name"]]
    old_not_about = scheme["not_about_label"]
    scheme["not_about_label"] = NOT_ABOUT
    scheme["polar_stance_labels"] = [STANCES[name] for name in scheme.get("polar_stance_labels", ["favor", "against"])]
    for target in scheme["stance_targets"]:
        target["id"] = TARGETS[target["id"]]
    assert old_not_about == "not_about"
    return scheme


def renamed_gold(line: bytes) -> bytes:
    record = orjson.loads(line)
    for entity in record["entities"]:
        entity["label"] = ENTITIES[entity["label"]]
        if entity.get("stance") is not None:
            entity["stance"] = STANCES[entity["stance"]]
    record["stances"] = {
        TARGETS[target]: NOT_ABOUT if value == "not_about" else STANCES[value]
        for target, value in record["stances"].items()
    }
    return orjson.dumps(record) + b"\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("renamed") / "project"
    if not (REPO_ROOT / "corpus" / "raw" / "sample").is_dir():
        pytest.skip("the sample corpus is not in this checkout")
    (root / "annotations" / "sample").mkdir(parents=True)
    (root / "corpus" / "raw").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "schema", root / "schema")
    shutil.copytree(REPO_ROOT / "corpus" / "raw" / "sample", root / "corpus" / "raw" / "sample")
    shutil.copy(REPO_ROOT / "corpus" / "splits.jsonl", root / "corpus" / "splits.jsonl")
    shutil.copy(REPO_ROOT / "dataset_card.md", root / "dataset_card.md")
    shutil.copy(REPO_ROOT / "annotations" / "guidelines.md", root / "annotations" / "guidelines.md")
    scheme = renamed_scheme(REPO_ROOT / "annotations" / "scheme.yaml")
    (root / "annotations" / "scheme.yaml").write_text(yaml.safe_dump(scheme, sort_keys=False), encoding="utf-8")
    gold = (REPO_ROOT / "annotations" / "sample" / "gold.jsonl").read_bytes().splitlines()
    (root / "annotations" / "sample" / "gold.jsonl").write_bytes(b"".join(renamed_gold(line) for line in gold))
    (root / "spacy_labels.yaml").write_text(yaml.safe_dump(SPACY_MAP), encoding="utf-8")
    return root


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSSTANCE_ROOT": str(project), "HF_DATASETS_CACHE": str(project.parent / "hf-cache")}
    done = subprocess.run([NEWSSTANCE, *args], capture_output=True, text=True, env=env, cwd=project, timeout=600)
    assert done.returncode == 0, f"newsstance {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


@pytest.mark.slow
def test_a_scheme_with_every_label_renamed_runs_the_whole_pipeline(project: Path) -> None:
    run(project, "scheme", "sync")
    derived = (project / "schema" / "predictions.schema.json").read_text(encoding="utf-8")
    assert "OTHER_THING" in derived and "emissions_tax" in derived and "favor" not in derived
    run(project, "normalize")
    built = run(
        project, "build", "--gold", "annotations/sample/gold.jsonl", "--license", "cc0-1.0", "--with-benchmarks"
    )
    release = next(path for path in (project / "dist").iterdir() if path.is_dir())
    assert "built" in built.stdout

    card = (release / "README.md").read_text(encoding="utf-8")
    assert "WHO" in card and "dam_project" in card
    # The card's leaderboard: F_avg named from the scheme; the shipped spaCy map names labels this scheme
    # lacks, so that baseline is skipped with its reason (not a crash, not a row of zeros).
    assert "F_avg = mean F1 of pro and contra" in card
    assert "| stance |" in card and "skipped" in card and "baseline spacy skipped" in built.stderr

    scored = {}
    for name in ("majority", "gazetteer", "spacy", "stance"):
        output = project / f"{name}.jsonl"
        extra = ["--label-map", str(project / "spacy_labels.yaml")] if name == "spacy" else []
        run(project, "baseline", name, "--dataset", str(release), "-o", str(output), *extra)
    for name in ("gazetteer", "stance"):
        results = project / f"{name}.results.json"
        run(
            project,
            "evaluate",
            str(project / f"{name}.jsonl"),
            "--dataset",
            str(release),
            "--resamples",
            "50",
            "-o",
            str(results),
        )
        scored[name] = orjson.loads(results.read_bytes())
    assert scored["stance"]["settings"]["f_avg_classes"] == ["pro", "contra"]
    assert set(scored["stance"]["document_stance"]["per_target"]) == set(TARGETS.values())
    assert scored["stance"]["entities"] == "not predicted"
    gazetteer_labels = scored["gazetteer"]["entities"]["strict"]["per_label"]
    assert set(gazetteer_labels) == set(ENTITIES.values())
    assert scored["gazetteer"]["entities"]["strict"]["micro"]["f1"]["value"] > 0
    spacy_labels = {
        e["label"]
        for line in (project / "spacy.jsonl").read_bytes().splitlines()
        for e in orjson.loads(line)["entities"]
    }
    assert spacy_labels and spacy_labels <= set(ENTITIES.values())

    compared_path = project / "compared.json"
    compared = run(
        project,
        "evaluate",
        str(project / "spacy.jsonl"),
        "--compare",
        str(project / "majority.jsonl"),
        "--dataset",
        str(release),
        "--resamples",
        "50",
        "-o",
        str(compared_path),
    )
    assert "Paired bootstrap" in compared.stdout
    comparison = orjson.loads(compared_path.read_bytes())["comparison"]
    assert comparison["tasks"]["ner"] == "not predicted by B"
    assert set(comparison["figures"]["document_stance"]["per_target"]) == set(TARGETS.values())

    dry = run(project, "publish", "fictional-org/renamed", "--version", release.name, "--dry-run")
    assert "would upload" in dry.stdout
