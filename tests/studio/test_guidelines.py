"""The annotation guidelines cover every label and stance value of the scheme.

Labels come from `annotations/scheme.yaml`, so a label added there without a guidelines
section fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsstance.scheme import load_scheme

PARTS = ("**Definition.**", "**Include:**", "**Exclude:**", "**Example:**")


@pytest.fixture(scope="module")
def guidelines(repo_root: Path) -> str:
    return (repo_root / "annotations" / "guidelines.md").read_text(encoding="utf-8")


def chapter(text: str, title: str) -> str:
    """Body of the `## ...` chapter whose heading contains `title`."""
    match = re.search(rf"^## [^\n]*{re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no chapter {title!r}"
    return match.group(1)


def sections(text: str) -> dict[str, str]:
    """`### ...` heading -> its body."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def section_for(chapter_text: str, value: str) -> str:
    found = [body for heading, body in sections(chapter_text).items() if f"`{value}`" in heading]
    assert len(found) == 1, f"expected one section for `{value}`"
    return found[0]


def test_every_entity_label_has_a_complete_section(guidelines: str) -> None:
    labels = chapter(guidelines, "Entity labels")
    for name in load_scheme().entity_names:
        body = section_for(labels, name)
        for part in PARTS:
            assert part in body, f"{name}: missing {part}"


@pytest.mark.parametrize(
    "title, attribute", [("Mention stance", "stance_names"), ("Document stance", "document_stance_names")]
)
def test_every_stance_value_has_a_complete_section(guidelines: str, title: str, attribute: str) -> None:
    stances = chapter(guidelines, title)
    values = getattr(load_scheme(), attribute)
    for value in values:
        body = section_for(stances, value)
        for part in PARTS:
            assert part in body, f"{title} {value}: missing {part}"


def test_required_edge_cases_are_covered(guidelines: str) -> None:
    edge = sections(chapter(guidelines, "Edge cases"))
    for topic in ("Titles", "Possessives", "Nested names", "Metonymy", "Nationalities", "Quoted speech", "Headlines"):
        assert any(topic in heading for heading in edge), topic


def test_guidelines_are_html_safe(guidelines: str) -> None:
    assert "<" not in guidelines and "&" not in guidelines
