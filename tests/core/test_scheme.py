"""The scheme is the one definition: derived files follow it, bad schemes are refused."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from newsstance.errors import UserError
from newsstance.scheme import load_scheme, out_of_sync, scheme_from_dict


@pytest.fixture()
def scheme_data(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "annotations" / "scheme.yaml").read_text())


def test_committed_derived_files_are_in_sync(repo_root: Path) -> None:
    assert out_of_sync(load_scheme(repo_root / "annotations" / "scheme.yaml"), repo_root) == []


def test_label_added_once_shows_up_everywhere(scheme_data: dict) -> None:
    data = copy.deepcopy(scheme_data)
    data["entity_labels"].append({"name": "LAW", "description": "Named laws."})
    data["stance_targets"].append({"id": "rail_strike", "name": "Rail strike", "question": "Stance on the strike?"})
    scheme = scheme_from_dict(data)
    config = ET.fromstring(scheme.label_config())
    labels = [el.get("value") for el in config.iter("Label")]
    assert "LAW" in labels
    assert config.find(".//Choices[@name='stance_rail_strike']") is not None
    assert "LAW" in scheme.annotation_schema()["properties"]["entities"]["items"]["properties"]["label"]["enum"]
    assert "rail_strike" in scheme.gold_schema()["properties"]["stances"]["required"]
    assert "B-LAW" in scheme.bio_tags and "I-LAW" in scheme.bio_tags


def test_label_config_has_per_region_mention_stance(scheme_data: dict) -> None:
    config = ET.fromstring(scheme_from_dict(scheme_data).label_config())
    mention = config.find(".//Choices[@name='mention_stance']")
    assert mention is not None and mention.get("perRegion") == "true"
    stance = config.find(".//Choices[@name='stance_carbon_levy']")
    assert [c.get("value") for c in stance.iter("Choice")][-1] == scheme_data["not_about_label"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["entity_labels"].append(dict(d["entity_labels"][0])), "duplicate entity label"),
        (lambda d: d.update(not_about_label=d["stance_labels"][0]["name"]), "also a stance label"),
        (lambda d: d["entity_labels"][0].update(name="lower"), "invalid scheme"),
        (lambda d: d.pop("mention_stance"), "invalid scheme"),
    ],
)
def test_bad_scheme_is_refused_with_a_reason(scheme_data: dict, mutate, message: str) -> None:
    data = copy.deepcopy(scheme_data)
    mutate(data)
    with pytest.raises(UserError, match=message):
        scheme_from_dict(data)
