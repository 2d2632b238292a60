"""The rendered card: Hub-parseable YAML that datasets' own classes accept, the sections users expect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from newsstance.errors import UserError
from newsstance.release.build import build_release
from newsstance.release.card import KNOWN_LICENSES, KNOWN_TASK_CATEGORIES, KNOWN_TASK_IDS, SIZE_CATEGORIES
from newsstance.release.features import features_for
from newsstance.scheme import load_scheme

AGREEMENT = {
    "scheme_version": "1.0.0",
    "counts": {"annotations": 12, "articles": 6, "annotators": 3},
    "document_stance": {"tidewater_dam": {"alpha": {"value": 0.8123, "items": 6}, "mean_kappa": {"value": None}}},
    "entities": {"pooled": {"overall": {"strict_f1": {"value": 0.7777}}}},
}
RESULTS = [{"model": "gazetteer-baseline", "split": "test", "strict_f1": 0.4321}]


def build(files: Any, tmp_path: Path, **kwargs: Any):
    return build_release(
        version="1.0.0",
        out=files.out,
        articles=[files.articles],
        gold=files.gold,
        splits=files.splits,
        progress=False,
        **kwargs,
    )


@pytest.fixture
def release(corpus, tmp_path: Path) -> Path:
    files = corpus()
    agreement = tmp_path / "agreement.json"
    agreement.write_bytes(orjson.dumps(AGREEMENT))
    results = tmp_path / "results.json"
    results.write_bytes(orjson.dumps(RESULTS))
    return build(files, tmp_path, license_id="cc-by-4.0", agreement=agreement, results=results).path


def test_card_yaml_parses_with_hub_and_datasets_classes(release: Path) -> None:
    card = DatasetCard.load(release / "README.md")
    data = card.data
    assert data.license == "cc-by-4.0" and data.license in KNOWN_LICENSES
    assert data.size_categories == ["n<1K"] and set(data.size_categories) <= set(SIZE_CATEGORIES)
    assert data.task_categories == ["token-classification", "text-classification"]
    assert set(data.task_categories) <= KNOWN_TASK_CATEGORIES and set(data.task_ids) <= KNOWN_TASK_IDS
    assert "named-entity-recognition" in data.task_ids and "stance-detection" in data.tags
    assert data.pretty_name == "newsstance" and data.language == ["en"]
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert set(configs) == {"default", "articles"}
    for config in configs.values():
        for item in config["data_files"]:
            for path in item["path"]:
                assert re.fullmatch(rf"data/\w+/{item['split']}-[0-9a-f]{{8}}\.parquet", path)
                assert (release / path).is_file()
    infos = DatasetInfosDict.from_dataset_card_data(data)
    manifest = orjson.loads((release / "manifest.json").read_bytes())
    scheme = load_scheme()
    for name, info in infos.items():
        assert info.features == features_for(scheme, name)
        assert {s: v.num_examples for s, v in info.splits.items()} == manifest["rows"][name]


def test_yaml_uses_list_never_sequence_for_lists_of_dicts(release: Path) -> None:
    text = (release / "README.md").read_text()
    yaml_block = text.split("---")[1]
    assert "sequence:" not in yaml_block
    assert re.search(r"- name: entities\n    list:\n    - name: start", yaml_block)


def test_card_has_the_template_sections_and_datasheet_answers(release: Path) -> None:
    body = DatasetCard.load(release / "README.md").text
    for heading in (
        "## Dataset Details",
        "### Dataset Summary",
        "### Languages",
        "## Uses",
        "## Dataset Structure",
        "### Data Instances",
        "### Data Fields",
        "### Label Inventory",
        "### Data Splits",
        "## Dataset Creation",
        "### Source Data",
        "#### Annotation process",
        "### Personal and Sensitive Information",
        "## Bias, Risks, and Limitations",
        "## Licensing Information",
        "## Benchmark",
        "## Version History",
        "## Datasheet Questions",
        "## Citation",
    ):
        assert heading in body, heading
    assert "The Quellton Ledger" in body and "2031-03-02 to 2031-03-13" in body
    assert "force_redownload" in body
    assert "PERSON" in body and "copyright" in body
    assert '"id": "' in body  # example instance


def test_agreement_figures_and_benchmark_results_reach_the_card(release: Path) -> None:
    body = (release / "README.md").read_text()
    assert "| document_stance / tidewater_dam / alpha | 0.8123 |" in body
    assert "| document_stance / tidewater_dam / mean_kappa | undefined |" in body
    assert "| entities / pooled / overall / strict_f1 | 0.7777 |" in body
    assert "3 annotator(s)" in body
    assert "| gazetteer-baseline | test | 0.4321 |" in body


def test_label_counts_per_split_match_the_gold(corpus, tmp_path: Path) -> None:
    files = corpus()
    result = build(files, tmp_path)
    body = (result.path / "README.md").read_text()
    persons = sum(e["label"] == "PERSON" for g in files.gold_records for e in g["entities"])
    row = re.search(r"\| entity PERSON \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", body)
    assert row is not None and int(row[4]) == persons == sum(int(row[i]) for i in (1, 2, 3))
    assert "No benchmark results were recorded" in body
    assert "were not computed for this version" in body


def test_unknown_licence_is_refused_before_anything_is_written(corpus, tmp_path: Path) -> None:
    files = corpus()
    with pytest.raises(UserError, match="unknown licence id"):
        build(files, tmp_path, license_id="CC-BY")
    assert not files.out.exists()


def test_agreement_figure_is_drawn_and_linked(release: Path) -> None:
    figure = release / "figures" / "agreement.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](figures/agreement.png)" in (release / "README.md").read_text()
