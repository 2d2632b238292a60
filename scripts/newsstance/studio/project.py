"""The Label Studio project newsstance annotates in: find it, create it, keep its config in step with
the scheme - without orphaning annotations.

Label Studio does not reliably refuse a config change that leaves existing annotations pointing
at labels or controls that no longer exist (`projects.update` applies it; the summary it checks
misses bulk-imported annotations), so we compute the orphans ourselves from the annotations.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from newsstance.errors import UserError
from newsstance.paths import project_root
from newsstance.scheme import Scheme

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from newsstance.studio.client import Connection

DEFAULT_PROJECT = "newsstance"
DEFAULT_OVERLAP = 2  # annotators per task in Label Studio's queue, so agreement can be measured
# Result types whose value lists the chosen names under a key of the same name.
VALUE_KEYS = {"labels": "labels", "choices": "choices", "taxonomy": "taxonomy", "rating": None, "textarea": None}


@dataclass(frozen=True)
class Control:
    """One control tag of a labelling config: `<Labels name=... toName=...>` and its values."""

    tag: str
    name: str
    to_name: tuple[str, ...]
    values: frozenset[str]
    per_region: bool

    @property
    def result_type(self) -> str:
        return self.tag.lower()


def parse_controls(label_config: str) -> dict[str, Control]:
    """Control tags (those with `name` and `toName`) of a labelling config, by name."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as exc:
        raise UserError(f"the labelling config is not valid XML: {exc}") from None
    controls = {}
    for element in root.iter():
        name, to_name = element.get("name"), element.get("toName")
        if not name or not to_name:
            continue
        values = frozenset(
            child.get("value") or child.get("alias") or "" for child in element if child.tag in {"Label", "Choice"}
        )
        controls[name] = Control(
            tag=element.tag,
            name=name,
            to_name=tuple(to_name.split(",")),
            values=values,
            per_region=element.get("perRegion", "").lower() == "true",
        )
    return controls


def result_values(result: dict[str, Any]) -> list[str]:
    """The label/choice names one annotation result uses."""
    key = VALUE_KEYS.get(str(result.get("type")))
    value = result.get("value") or {}
    if key is None or not isinstance(value, dict):
        return []
    names = value.get(key) or []
    if key == "taxonomy":  # lists of paths
        return [str(part) for path in names for part in (path if isinstance(path, list) else [path])]
    return [str(name) for name in names] if isinstance(names, list) else [str(names)]


def orphaned_results(results: Iterable[dict[str, Any]], controls: dict[str, Control]) -> Counter[str]:
    """What a new config would orphan among existing annotation results, with counts."""
    orphans: Counter[str] = Counter()
    for result in results:
        from_name = str(result.get("from_name"))
        control = controls.get(from_name)
        if control is None:
            orphans[f"control {from_name!r} removed"] += 1
            continue
        if result.get("to_name") not in control.to_name:
            orphans[f"control {from_name!r} no longer points at {result.get('to_name')!r}"] += 1
        if result.get("type") and result["type"] != control.result_type:
            orphans[f"control {from_name!r} changed type {result['type']} -> {control.result_type}"] += 1
            continue
        for name in result_values(result):
            if control.values and name not in control.values:
                orphans[f"{from_name} value {name!r} removed"] += 1
    return orphans


def normalise_config(config: str) -> str:
    """Whitespace-insensitive form of a labelling config, to tell a real change from reformatting."""
    return re.sub(r"\s+", " ", re.sub(r">\s+<", "><", config)).strip()


def guidelines_html(path: Path | None = None) -> str:
    """`annotations/guidelines.md` rendered to HTML for the project's instructions ('' when absent)."""
    path = path or project_root() / "annotations" / "guidelines.md"
    if not path.is_file():
        return ""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(path.read_text(encoding="utf-8"))


def find_project(client: LabelStudio, conn: Connection, title: str) -> dict[str, Any] | None:
    """The one project with this exact title, or None; several are ambiguous."""
    with conn.errors(f"listing projects titled {title!r}"):
        pages: Iterable[Any] = client.projects.list(title=title)
        found: list[dict[str, Any]] = [item.model_dump() for item in pages]
    found = [p for p in found if p.get("title") == title]
    if len(found) > 1:
        ids = ", ".join(str(p["id"]) for p in found)
        raise UserError(f"{len(found)} Label Studio projects are titled {title!r} (ids {ids}); rename all but one")
    return found[0] if found else None


def require_project(client: LabelStudio, conn: Connection, title: str) -> dict[str, Any]:
    project = find_project(client, conn, title)
    if project is None:
        raise UserError(f"no Label Studio project titled {title!r} at {conn.url} (push creates it)")
    return project


def annotation_results(client: LabelStudio, conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """Every result of every annotation in the project (export of annotated tasks only)."""
    with conn.errors("exporting annotations to check the config change"):
        raw = b"".join(client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=False))
    tasks = orjson.loads(raw)
    return [result for task in tasks for ann in task.get("annotations") or [] for result in ann.get("result") or []]


@dataclass(frozen=True)
class ProjectSync:
    project: dict[str, Any]
    created: bool
    config_updated: bool
    instructions_updated: bool


def ensure_project(
    client: LabelStudio,
    conn: Connection,
    title: str,
    scheme: Scheme,
    *,
    guidelines: str | None = None,
    overlap: int = DEFAULT_OVERLAP,
) -> ProjectSync:
    """Create the project from the scheme, or bring its config and instructions up to date.

    A config change that would orphan annotations raises UserError listing what would be lost.
    """
    if len(title) < 3:
        raise UserError(f"project title {title!r} is too short (Label Studio needs at least 3 characters)")
    config = scheme.label_config()
    instructions = guidelines_html() if guidelines is None else guidelines
    project = find_project(client, conn, title)
    if project is None:
        with conn.errors(f"creating project {title!r}"):
            created = client.projects.create(
                title=title,
                description=f"newsstance annotation (scheme {scheme.scheme_version})",
                label_config=config,
                expert_instruction=instructions,
                show_instruction=bool(instructions),
                maximum_annotations=overlap,
            ).model_dump()
        return ProjectSync(created, created=True, config_updated=False, instructions_updated=False)

    config_changed = normalise_config(project.get("label_config") or "") != normalise_config(config)
    instructions_changed = bool(instructions) and (project.get("expert_instruction") or "") != instructions
    if config_changed:
        orphans = orphaned_results(annotation_results(client, conn, project["id"]), parse_controls(config))
        if orphans:
            listed = "; ".join(f"{what} ({n} result{'s' * (n != 1)})" for what, n in orphans.most_common(5))
            raise UserError(
                f"refusing to change the config of project {title!r}: it would orphan existing annotations - {listed}"
            )
    if config_changed or instructions_changed:
        update: dict[str, Any] = {}
        if config_changed:
            update["label_config"] = config
        if instructions_changed:
            update.update(expert_instruction=instructions, show_instruction=True)
        with conn.errors(f"updating project {title!r}"):
            project = client.projects.update(project["id"], **update).model_dump()
    return ProjectSync(project, created=False, config_updated=config_changed, instructions_updated=instructions_changed)
