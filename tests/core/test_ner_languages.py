"""Pre-annotation per language: spaCy for English, natasha for Russian, nothing for the rest."""

from __future__ import annotations

import pytest

from newsstance.ner import DEFAULT_MODEL, LanguageRoutedNER, annotating_models, load_label_map, pipeline_for
from newsstance.scheme import load_scheme

# Hand-written Russian sentences (fictional people and places) with the entities a reader sees.
RUSSIAN = [
    (
        "Мэр Светлогорья Эдита Карова встретилась в Москве с министром транспорта Ильёй Варгиным.",
        {("Эдита Карова", "PERSON"), ("Ильёй Варгиным", "PERSON"), ("Москве", "LOC"), ("Светлогорья", "LOC")},
    ),
    ("Фома Вельский много лет работает на причалах в Приморске.", {("Фома Вельский", "PERSON"), ("Приморске", "LOC")}),
    ("Компания «Северный паром» получила заказ на два новых судна.", {("Северный паром", "ORG")}),
]


def test_each_language_has_its_pipeline_or_none():
    assert pipeline_for("en-GB") == DEFAULT_MODEL and pipeline_for("ru") == "natasha"
    assert pipeline_for("ja") is None and pipeline_for(None) is None and pipeline_for("de") is None
    assert annotating_models() == {"en": DEFAULT_MODEL, "ru": "natasha"}


def test_label_map_covers_every_models_types():
    label_map = load_label_map(load_scheme())
    assert {"PER", "LOC", "ORG"} <= set(label_map)  # natasha
    assert {"PERSON", "GPE", "ORG", "NORP"} <= set(label_map)  # spaCy (OntoNotes)


def test_russian_goes_to_natasha_and_other_languages_get_nothing():
    pytest.importorskip("natasha")
    ner = LanguageRoutedNER(load_scheme())
    texts = [(text, "ru") for text, _ in RUSSIAN] + [
        ("港町みなせ市の市議会は火曜日、旧フェリー乗り場の再開を可決した。", "ja")
    ]
    results = ner.spans(texts)
    assert results[-1] is None and ner.skipped == {"ja": 1}
    found = set()
    for (text, _), spans in zip(texts[:-1], results[:-1], strict=True):
        assert spans is not None
        found |= {(text[s.start : s.end], s.label) for s in spans}
    expected = set().union(*(gold for _, gold in RUSSIAN))
    assert len(found & expected) >= len(expected) - 1  # the model may miss one
    assert ner.model_versions["ru"].startswith("natasha:")
    assert "en" not in ner.model_versions  # the English model never ran
