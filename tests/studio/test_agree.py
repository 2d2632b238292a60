"""Agreement figures on tiny fictional cases, checked against hand-computed values.

Expected numbers come from the textbook formulas worked out in the comments (or from an
independent implementation in this file / nltk), never from the code under test.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from collections import Counter
from itertools import combinations, permutations
from pathlib import Path

import orjson
import pytest
import yaml

from newsstance.cli import main
from newsstance.errors import UserError
from newsstance.gold.agree import compute_agreement, partial_matches, read_annotations
from newsstance.scheme import load_scheme, scheme_from_dict

TEXT = (
    "Prime Minister Ilse Marrow told the Greenway Party in Caldmere on Monday that the Tidewater Dam "
    "would be finished before the Caldmere Climate Summit, while Norvandian farmers on the River Sarn protested."
)
SHA = hashlib.sha256(TEXT.encode()).hexdigest()


def span(part: str, label: str, stance: str | None = None, shift: int = 0) -> dict:
    """An entity of TEXT; `shift` moves the start to make a partially overlapping span."""
    start = TEXT.index(part) + shift
    end = TEXT.index(part) + len(part)
    return {"start": start, "end": end, "label": label, "text": TEXT[start:end], "stance": stance, "region_id": None}


def ann(
    aid: int,
    annotator: str,
    article: int = 1,
    *,
    dam: str | None = None,
    levy: str | None = None,
    entities: tuple = (),
    cancelled: bool = False,
    ground_truth: bool = False,
    updated_at: str = "2031-05-01T10:00:00Z",
) -> dict:
    stances = {k: v for k, v in (("tidewater_dam", dam), ("carbon_levy", levy)) if v is not None}
    return {
        "annotation_id": aid,
        "task_id": article,
        "project_id": 1,
        "article_id": f"{article:016x}",
        "text_sha256": SHA,
        "annotator": annotator,
        "created_at": updated_at,
        "updated_at": updated_at,
        "lead_time": 12.5,
        "cancelled": cancelled,
        "ground_truth": ground_truth,
        "entities": list(entities),
        "stances": stances,
        "scheme_version": "1.0.0",
    }


@pytest.fixture(scope="module")
def scheme():
    return load_scheme()


def stance_records(pairs: list[tuple[str, str]], levy: str = "not_about") -> list[dict]:
    """Two annotators (ana, ben) answering the dam question on one article per pair."""
    records = []
    for article, (a, b) in enumerate(pairs, start=1):
        records.append(ann(2 * article, "ana", article, dam=a, levy=levy))
        records.append(ann(2 * article + 1, "ben", article, dam=b, levy=levy))
    return records


# 10 articles: (f,f)x3 (f,a) (a,a)x3 (a,f) (n,n)x2.
# Kappa: po = 8/10; both marginals f4 a4 n2 -> pe = .16+.16+.04 = .36; kappa = (.8-.36)/.64 = 0.6875.
# Alpha (nominal, 20 values): o_fa = o_af = 2 -> Do = 4/20; n_f = n_a = 8, n_n = 4;
#   De = 2(8*8 + 8*4 + 8*4)/(20*19) = 256/380; alpha = 1 - (4/20)/(256/380) = 1 - 76/256 = 0.703125.
KNOWN_PAIRS = (
    [("favor", "favor")] * 3
    + [("favor", "against")]
    + [("against", "against")] * 3
    + [("against", "favor")]
    + [("neutral", "neutral")] * 2
)


def test_document_stance_kappa_and_alpha_match_hand_computed_values(scheme) -> None:
    report = compute_agreement(stance_records(KNOWN_PAIRS), scheme)
    dam = report["document_stance"]["tidewater_dam"]
    assert dam["alpha"]["value"] == pytest.approx(0.703125)
    assert (dam["alpha"]["articles"], dam["alpha"]["annotators"], dam["alpha"]["items"]) == (10, 2, 20)
    [pair] = dam["pairs"]
    assert pair["annotators"] == ["ana", "ben"]
    assert pair["value"] == pytest.approx(0.6875)
    assert pair["observed_agreement"] == pytest.approx(0.8)
    assert pair["items"] == 10
    assert dam["mean_kappa"]["value"] == pytest.approx(0.6875)


def test_no_variance_is_reported_as_undefined_not_nan(scheme) -> None:
    report = compute_agreement(stance_records(KNOWN_PAIRS, levy="not_about"), scheme)
    levy = report["document_stance"]["carbon_levy"]
    assert levy["alpha"]["value"] is None
    assert "no variance" in levy["alpha"]["undefined_reason"]
    assert levy["pairs"][0]["value"] is None and "no variance" in levy["pairs"][0]["undefined_reason"]
    assert levy["mean_kappa"]["value"] is None
    assert b"NaN" not in orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY)


def test_perfect_agreement_is_one(scheme) -> None:
    entities = (span("Ilse Marrow", "PERSON", "favor"), span("Caldmere", "GPE", "neutral"))
    records = []
    for article, answer in enumerate(["favor", "against", "neutral", "not_about"], start=1):
        for offset, name in enumerate(["ana", "ben", "cy"]):
            records.append(ann(10 * article + offset, name, article, dam=answer, levy="neutral", entities=entities))
    report = compute_agreement(records, scheme)
    dam = report["document_stance"]["tidewater_dam"]
    assert dam["alpha"]["value"] == 1.0
    assert [p["value"] for p in dam["pairs"]] == [1.0, 1.0, 1.0]
    assert [p["annotators"] for p in dam["pairs"]] == [["ana", "ben"], ["ana", "cy"], ["ben", "cy"]]
    pooled = report["entities"]["pooled"]
    assert pooled["overall"]["strict_f1"]["value"] == 1.0
    assert pooled["labels"]["PERSON"]["strict_f1"]["matches"] == 3 * 4  # 3 pairs x 4 articles
    assert pooled["labels"]["EVENT"]["strict_f1"]["value"] is None
    mention = report["mention_stance"]["pooled"]
    assert mention["accuracy"]["value"] == 1.0 and mention["kappa"]["value"] == 1.0


def independent_nominal_alpha(units: list[list[str | None]]) -> float:
    """Krippendorff's alpha from the coincidence matrix (Krippendorff 2011, section C)."""
    coincidences: Counter = Counter()
    for unit in units:
        values = [v for v in unit if v is not None]
        if len(values) < 2:
            continue
        for c, k in permutations(range(len(values)), 2):
            coincidences[(values[c], values[k])] += 1 / (len(values) - 1)
    n_c: Counter = Counter()
    for (c, _), weight in coincidences.items():
        n_c[c] += weight
    n = sum(n_c.values())
    observed = sum(w for (c, k), w in coincidences.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n - 1)
    return 1 - observed / expected


def three_annotator_records(units: list[list[str | None]]) -> list[dict]:
    records, aid = [], 1
    for article, unit in enumerate(units, start=1):
        for name, answer in zip(["ana", "ben", "cy"], unit, strict=True):
            if answer is not None:
                records.append(ann(aid, name, article, dam=answer))
                aid += 1
    return records


def test_alpha_with_missing_answers_matches_an_independent_formula(scheme) -> None:
    units = [
        ["favor", "favor", None],
        ["favor", "against", "favor"],
        ["against", "against", "against"],
        [None, "neutral", "neutral"],
        ["neutral", "favor", None],
        ["not_about", "not_about", "neutral"],
        ["favor", None, None],
    ]  # the last unit has one answer only: not pairable
    report = compute_agreement(three_annotator_records(units), scheme)
    alpha = report["document_stance"]["tidewater_dam"]["alpha"]
    assert alpha["value"] == pytest.approx(independent_nominal_alpha(units))
    assert (alpha["articles"], alpha["annotators"], alpha["items"]) == (6, 3, 15)


def test_alpha_agrees_with_nltk_annotation_task(scheme) -> None:
    agreement = pytest.importorskip("nltk.metrics.agreement")
    units = [
        ["favor", "favor", "against"],
        ["against", "against", "against"],
        ["neutral", "favor", "neutral"],
        ["not_about", "not_about", "not_about"],
        ["favor", "favor", "favor"],
    ]
    report = compute_agreement(three_annotator_records(units), scheme)
    triples = [(coder, str(i), value) for i, unit in enumerate(units) for coder, value in zip("abc", unit, strict=True)]
    expected = agreement.AnnotationTask(data=triples).alpha()
    assert report["document_stance"]["tidewater_dam"]["alpha"]["value"] == pytest.approx(expected)
    # pairwise kappa for (ana, cy): po = 4/5; ana f2 a1 n1 x1, cy f1 a2 n1 x1 -> pe = (2+2+1+1)/25 = 6/25
    kappa = {tuple(p["annotators"]): p["value"] for p in report["document_stance"]["tidewater_dam"]["pairs"]}
    assert kappa[("ana", "cy")] == pytest.approx((4 / 5 - 6 / 25) / (1 - 6 / 25))


def test_one_annotator_only_is_undefined_everywhere(scheme) -> None:
    records = [ann(1, "ana", 1, dam="favor", entities=(span("Caldmere", "GPE"),)), ann(2, "ana", 2, dam="against")]
    report = compute_agreement(records, scheme)
    dam = report["document_stance"]["tidewater_dam"]
    assert dam["alpha"]["value"] is None and dam["alpha"]["undefined_reason"] == "one annotator only"
    assert dam["pairs"] == [] and dam["mean_kappa"]["undefined_reason"] == "no pair of annotators"
    assert report["entities"]["pooled"]["overall"]["strict_f1"]["value"] is None
    assert report["counts"]["annotators"] == 1


def test_entity_span_f1_strict_and_partial(scheme) -> None:
    ana = (
        span("Ilse Marrow", "PERSON"),
        span("Greenway Party", "ORG"),
        span("Tidewater Dam", "LOC"),
        span("River Sarn", "LOC"),
    )
    ben = (
        span("Ilse Marrow", "PERSON"),
        span("Greenway Party", "ORG", shift=9),  # "Party" only: overlap
        span("Tidewater Dam", "MISC"),
        span("Norvandian", "NORP"),
        span("River Sarn", "LOC"),
    )
    report = compute_agreement([ann(1, "ana", entities=ana), ann(2, "ben", entities=ben)], scheme)
    labels = report["entities"]["pooled"]["labels"]
    assert labels["PERSON"]["strict_f1"]["value"] == 1.0
    assert labels["ORG"]["strict_f1"]["value"] == 0.0
    assert labels["ORG"]["partial_f1"]["value"] == 1.0
    # LOC: ana 2 spans, ben 1, one exact match -> 2*1/3
    assert labels["LOC"]["strict_f1"]["value"] == pytest.approx(2 / 3)
    assert labels["MISC"]["strict_f1"]["value"] == 0.0 and labels["NORP"]["partial_f1"]["value"] == 0.0
    assert labels["EVENT"]["strict_f1"]["value"] is None
    assert "EVENT" in labels["EVENT"]["strict_f1"]["undefined_reason"]
    overall = report["entities"]["pooled"]["overall"]
    # 4 + 5 spans; strict matches PERSON, LOC = 2; partial adds ORG = 3
    assert overall["strict_f1"]["value"] == pytest.approx(2 * 2 / 9)
    assert overall["partial_f1"]["value"] == pytest.approx(2 * 3 / 9)
    assert (overall["strict_f1"]["spans_a"], overall["strict_f1"]["spans_b"]) == (4, 5)


def test_partial_match_is_one_to_one() -> None:
    long = (0, 20, "ORG")
    assert partial_matches([long], [(0, 5, "ORG"), (6, 20, "ORG")]) == 1
    assert partial_matches([(0, 5, "ORG"), (6, 20, "ORG")], [long]) == 1
    # a greedy first-fit would pair A0 with B0 and leave A1 unmatched; the maximum matching pairs both
    assert partial_matches([(0, 10, "ORG"), (8, 12, "ORG")], [(5, 9, "ORG"), (0, 3, "ORG")]) == 2
    assert partial_matches([(0, 5, "ORG")], [(0, 5, "GPE")]) == 0
    assert partial_matches([(0, 5, "ORG")], [(5, 9, "ORG")]) == 0  # touching is not overlapping


def test_mention_stance_on_identically_marked_spans(scheme) -> None:
    # identical spans with stances: (f,f) (a,a) (f,a) (n,n); one shared span lacks ben's stance;
    # a span only ana marked is not scored.
    ana = (
        span("Ilse Marrow", "PERSON", "favor"),
        span("Greenway Party", "ORG", "against"),
        span("Caldmere", "GPE", "favor"),
        span("Norvandian", "NORP", "neutral"),
        span("River Sarn", "LOC", "against"),
        span("Tidewater Dam", "MISC", "favor"),
    )
    ben = (
        span("Ilse Marrow", "PERSON", "favor"),
        span("Greenway Party", "ORG", "against"),
        span("Caldmere", "GPE", "against"),
        span("Norvandian", "NORP", "neutral"),
        span("River Sarn", "LOC", None),
    )
    report = compute_agreement([ann(1, "ana", entities=ana), ann(2, "ben", entities=ben)], scheme)
    pooled = report["mention_stance"]["pooled"]
    assert pooled["accuracy"]["value"] == pytest.approx(3 / 4) and pooled["accuracy"]["items"] == 4
    # ana f2 a1 n1, ben f1 a2 n1: pe = (2+2+1)/16; po = 12/16 -> kappa = 7/11
    assert pooled["kappa"]["value"] == pytest.approx(7 / 11)
    assert pooled["without_stance"] == 1


def test_cancelled_and_superseded_annotations_are_skipped(scheme) -> None:
    records = stance_records(KNOWN_PAIRS)
    records.append(ann(100, "cy", 1, dam="against", levy="favor", cancelled=True))
    # ben first answered article 2 differently; the later annotation replaces it
    records.append(ann(101, "ben", 2, dam="neutral", updated_at="2031-04-01T10:00:00Z"))
    report = compute_agreement(records, scheme)
    assert report["document_stance"]["tidewater_dam"]["alpha"]["value"] == pytest.approx(0.703125)
    assert report["counts"]["cancelled_skipped"] == 1
    assert report["counts"]["superseded_skipped"] == 1
    assert report["counts"]["annotators"] == 2


def test_labels_and_targets_come_from_the_scheme(repo_root: Path) -> None:
    data = yaml.safe_load((repo_root / "annotations" / "scheme.yaml").read_text())
    data = copy.deepcopy(data)
    data["entity_labels"].append({"name": "LAW", "description": "Named laws."})
    data["stance_targets"].append({"id": "rail_strike", "name": "Rail strike", "question": "Stance on the strike?"})
    scheme = scheme_from_dict(data)
    law = {"start": 0, "end": 5, "label": "LAW", "text": TEXT[:5], "stance": None, "region_id": None}
    records = [ann(1, "ana", entities=(law,)), ann(2, "ben", entities=(law,))]
    for record in records:
        record["stances"]["rail_strike"] = "neutral"
    report = compute_agreement(records, scheme)
    assert report["entities"]["pooled"]["labels"]["LAW"]["strict_f1"]["value"] == 1.0
    assert "rail_strike" in report["document_stance"]


# --- reading and the command -----------------------------------------------------------


def write_lines(path: Path, records: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_invalid_records_are_refused_with_their_line(tmp_path: Path, scheme) -> None:
    bad = ann(2, "ben", dam="maybe")
    path = write_lines(tmp_path / "a.jsonl", [ann(1, "ana", dam="favor"), bad])
    with pytest.raises(UserError, match=r"a.jsonl:2: not a valid annotation record: /stances/tidewater_dam"):
        read_annotations(path, scheme)
    path = write_lines(tmp_path / "b.jsonl", [ann(1, "ana"), ann(1, "ben")])
    with pytest.raises(UserError, match="annotation 1 already on line 1"):
        read_annotations(path, scheme)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in a fresh process (exit code, streams)."""
    return subprocess.run(
        [sys.executable, "-m", "newsstance.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """The CLI entry point in-process (cheaper than a subprocess): exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["newsstance", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def test_agree_command_prints_tables_and_writes_the_report_idempotently(tmp_path: Path, monkeypatch, capsys) -> None:
    annotations = write_lines(tmp_path / "annotations.jsonl", stance_records(KNOWN_PAIRS))
    out = tmp_path / "out" / "agreement.json"
    first = run_cli("agree", "--annotations", str(annotations), "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "tidewater_dam" in first.stdout and "0.703" in first.stdout and "undefined" in first.stdout
    report = orjson.loads(out.read_bytes())
    assert report["document_stance"]["tidewater_dam"]["alpha"]["value"] == pytest.approx(0.703125)
    written = out.read_bytes()
    code, _ = run_main(["agree", "--annotations", str(annotations), "--out", str(out)], monkeypatch, capsys)
    assert code == 0
    assert out.read_bytes() == written


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "annotations file not found"),
        (b"{not json\n", "not valid JSON"),
        (orjson.dumps({"annotation_id": 1}) + b"\n", "not a valid annotation record"),
    ],
)
def test_agree_command_fails_with_one_line(
    tmp_path: Path, content: bytes | None, message: str, monkeypatch, capsys
) -> None:
    path = tmp_path / "annotations.jsonl"
    if content is not None:
        path.write_bytes(content)
    code, err = run_main(
        ["agree", "--annotations", str(path), "--out", str(tmp_path / "agreement.json")], monkeypatch, capsys
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "agreement.json").exists()


def test_pairs_cover_every_combination_of_annotators(scheme) -> None:
    records = [ann(i, name, 1, dam="favor" if i % 2 else "against") for i, name in enumerate("wxyz", start=1)]
    report = compute_agreement(records, scheme)
    got = [tuple(p["annotators"]) for p in report["document_stance"]["tidewater_dam"]["pairs"]]
    assert got == list(combinations("wxyz", 2))
