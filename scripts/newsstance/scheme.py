"""The annotation scheme: one definition (`annotations/scheme.yaml`), everything derived.

From a `Scheme` come the Label Studio labelling config, the JSON Schemas of annotation,
gold and prediction records (`schema/annotation.schema.json`, `gold.schema.json`,
`predictions.schema.json`) and, in `newsstance.release`, the Hugging Face features.
`newsstance scheme sync` rewrites the derived files; a test checks they are in sync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from newsstance.errors import UserError
from newsstance.paths import SCHEME_YAML, in_project, project_root
from newsstance.records import Validator, atomic_write, read_yaml_mapping, validator

# Label Studio control/object names used in the labelling config and in exports.
TEXT_NAME = "text"
ENTITIES_NAME = "entities"
MENTION_STANCE_NAME = "mention_stance"
STANCE_PREFIX = "stance_"

ARTICLE_ID = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


@dataclass(frozen=True)
class EntityLabel:
    name: str
    description: str
    color: str | None = None


@dataclass(frozen=True)
class StanceLabel:
    name: str
    description: str


@dataclass(frozen=True)
class StanceTarget:
    id: str
    name: str
    question: str

    @property
    def control_name(self) -> str:
        """Name of this target's Choices control in the Label Studio config."""
        return f"{STANCE_PREFIX}{self.id}"


@dataclass(frozen=True)
class Scheme:
    scheme_version: str
    language: str
    entity_labels: tuple[EntityLabel, ...]
    stance_labels: tuple[StanceLabel, ...]
    not_about_label: str
    stance_targets: tuple[StanceTarget, ...]
    mention_stance: bool
    source_path: Path | None = None
    polar_stance_labels: tuple[str, ...] = ()
    # Which entity spans may share characters: "none" (the BIO tags of a release need this),
    # "nested" (one span inside another) or "any". Checked at pull and adjudication.
    span_overlap: str = "none"

    # --- label inventories -------------------------------------------------
    @property
    def entity_names(self) -> list[str]:
        return [label.name for label in self.entity_labels]

    @property
    def stance_names(self) -> list[str]:
        """Stance values for an entity mention: favor/against/neutral by default."""
        return [label.name for label in self.stance_labels]

    @property
    def polar_stance_names(self) -> list[str]:
        """Stance labels that take a side: F_avg (SemEval-2016) averages their F1. Default: the first two."""
        return list(self.polar_stance_labels) or self.stance_names[:2]

    @property
    def document_stance_names(self) -> list[str]:
        """Answers to a per-target document question: the stances plus "not about it"."""
        return [*self.stance_names, self.not_about_label]

    @property
    def target_ids(self) -> list[str]:
        return [target.id for target in self.stance_targets]

    @property
    def bio_tags(self) -> list[str]:
        """conll2003-style BIO tag inventory: O, then B-/I- per entity label."""
        tags = ["O"]
        for name in self.entity_names:
            tags += [f"B-{name}", f"I-{name}"]
        return tags

    def target(self, target_id: str) -> StanceTarget:
        for target in self.stance_targets:
            if target.id == target_id:
                return target
        raise KeyError(target_id)

    # --- derived artefacts -------------------------------------------------
    def label_config(self) -> str:
        """Label Studio labelling config (XML) for entity spans, mention and document stance."""
        lines = ["<View>"]
        lines.append('  <Header value="$title" size="4"/>')
        lines.append(f'  <Labels name="{ENTITIES_NAME}" toName="{TEXT_NAME}" showInline="true">')
        for label in self.entity_labels:
            attrs = f"value={quoteattr(label.name)} hint={quoteattr(label.description)}"
            if label.color:
                attrs += f" background={quoteattr(label.color)}"
            lines.append(f"    <Label {attrs}/>")
        lines.append("  </Labels>")
        lines.append(f'  <Text name="{TEXT_NAME}" value="$text" granularity="symbol"/>')
        if self.mention_stance:
            lines.append('  <View visibleWhen="region-selected">')
            lines.append('    <Header value="Stance of the article towards the selected entity"/>')
            lines.append(
                f'    <Choices name="{MENTION_STANCE_NAME}" toName="{TEXT_NAME}" perRegion="true" '
                'choice="single-radio" showInline="true">'
            )
            for stance in self.stance_labels:
                lines.append(f"      <Choice value={quoteattr(stance.name)} hint={quoteattr(stance.description)}/>")
            lines.append("    </Choices>")
            lines.append("  </View>")
        for target in self.stance_targets:
            lines.append(f"  <Header value={quoteattr(target.question)}/>")
            lines.append(
                f'  <Choices name="{target.control_name}" toName="{TEXT_NAME}" choice="single-radio" '
                'required="true" showInline="true">'
            )
            for stance in self.stance_labels:
                lines.append(f"    <Choice value={quoteattr(stance.name)} hint={quoteattr(stance.description)}/>")
            lines.append(
                f"    <Choice value={quoteattr(self.not_about_label)} "
                f"hint={quoteattr('The article is not about ' + target.name + '.')}/>"
            )
            lines.append("  </Choices>")
        lines.append("</View>")
        return "\n".join(lines) + "\n"

    def _entity_schema(self, *, with_text: bool, with_region: bool) -> dict[str, Any]:
        props: dict[str, Any] = {
            "start": {"type": "integer", "minimum": 0, "description": "Code-point offset, inclusive."},
            "end": {"type": "integer", "minimum": 1, "description": "Code-point offset, exclusive."},
            "label": {"enum": self.entity_names},
            "stance": {"enum": [*self.stance_names, None], "description": "Stance towards this mention, or null."},
        }
        required = ["start", "end", "label"]
        if with_text:
            props["text"] = {"type": "string", "minLength": 1, "description": "Must equal text[start:end]."}
            required.append("text")
        if with_region:
            props["region_id"] = {"type": ["string", "null"], "description": "Label Studio region id."}
        return {"type": "object", "additionalProperties": False, "required": required, "properties": props}

    def _stances_schema(self, *, all_required: bool) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {t: {"enum": self.document_stance_names} for t in self.target_ids},
        }
        if all_required:
            schema["required"] = self.target_ids
        return schema

    def _header(self, name: str, title: str, description: str) -> dict[str, Any]:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://newsstance.example/schema/{name}",
            "title": title,
            "description": description + " Derived from annotations/scheme.yaml by `newsstance scheme sync`.",
            "x-scheme-version": self.scheme_version,
        }

    def annotation_schema(self) -> dict[str, Any]:
        """One Label Studio annotation converted by `newsstance studio pull`."""
        return {
            **self._header(
                "annotation.schema.json",
                "newsstance annotation record",
                "One annotation of one article by one annotator, converted from a Label Studio JSON export.",
            ),
            "type": "object",
            "additionalProperties": False,
            "required": [
                "annotation_id",
                "article_id",
                "text_sha256",
                "annotator",
                "created_at",
                "updated_at",
                "lead_time",
                "cancelled",
                "ground_truth",
                "entities",
                "stances",
                "scheme_version",
            ],
            "properties": {
                "annotation_id": {"type": "integer"},
                "task_id": {"type": ["integer", "null"]},
                "project_id": {"type": ["integer", "null"]},
                "article_id": ARTICLE_ID,
                "text_sha256": SHA256,
                "annotator": {"type": "string", "minLength": 1},
                "created_at": {"type": ["string", "null"], "format": "date-time"},
                "updated_at": {"type": ["string", "null"], "format": "date-time"},
                "lead_time": {"type": ["number", "null"], "minimum": 0},
                "cancelled": {"type": "boolean"},
                "ground_truth": {"type": "boolean"},
                "entities": {"type": "array", "items": self._entity_schema(with_text=True, with_region=True)},
                "stances": self._stances_schema(all_required=False),
                "scheme_version": {"type": "string"},
            },
        }

    def gold_schema(self) -> dict[str, Any]:
        """Adjudicated gold annotation of one article (`annotations/gold.jsonl`)."""
        return {
            **self._header(
                "gold.schema.json",
                "newsstance gold record",
                "The adjudicated annotation of one article: entity spans with mention stance, stance per target.",
            ),
            "type": "object",
            "additionalProperties": False,
            "required": [
                "article_id",
                "text_sha256",
                "entities",
                "stances",
                "annotation_ids",
                "method",
                "scheme_version",
            ],
            "properties": {
                "article_id": ARTICLE_ID,
                "text_sha256": SHA256,
                "entities": {"type": "array", "items": self._entity_schema(with_text=True, with_region=False)},
                "stances": self._stances_schema(all_required=True),
                "annotation_ids": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "Label Studio annotations this gold record was adjudicated from.",
                },
                "method": {
                    "enum": ["ground_truth", "unanimous", "majority", "agreed_items_only", "single", "manual"],
                    "description": "What adjudication did (see newsstance.gold.adjudicate).",
                },
                "scheme_version": {"type": "string"},
            },
        }

    def predictions_schema(self) -> dict[str, Any]:
        """One line of a predictions file scored by `newsstance evaluate`."""
        return {
            **self._header(
                "predictions.schema.json",
                "newsstance prediction record",
                "A model's predictions for one article (JSON Lines, one object per article). `entities` and "
                "`stances` are each optional: a file that leaves one out on every line does not predict that task.",
            ),
            "type": "object",
            "additionalProperties": False,
            "required": ["id"],
            "anyOf": [{"required": ["entities"]}, {"required": ["stances"]}],
            "properties": {
                "id": ARTICLE_ID,
                "entities": {"type": "array", "items": self._entity_schema(with_text=False, with_region=False)},
                "stances": self._stances_schema(all_required=False),
            },
        }

    def derived_files(self) -> dict[str, str]:
        """Relative path -> content of every file derived from the scheme."""

        def as_json(data: dict[str, Any]) -> str:
            return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"

        return {
            "annotations/label_config.xml": self.label_config(),
            "schema/annotation.schema.json": as_json(self.annotation_schema()),
            "schema/gold.schema.json": as_json(self.gold_schema()),
            "schema/predictions.schema.json": as_json(self.predictions_schema()),
        }


def scheme_from_dict(data: dict[str, Any], source_path: Path | None = None) -> Scheme:
    errors = validator("scheme.schema.json").errors(data)
    where = source_path or "scheme"
    if errors:
        raise UserError(f"{where}: invalid scheme: " + "; ".join(str(e) for e in errors))
    entity = tuple(EntityLabel(**item) for item in data["entity_labels"])
    stance = tuple(StanceLabel(**item) for item in data["stance_labels"])
    targets = tuple(StanceTarget(**item) for item in data["stance_targets"])
    for kind, names in (
        ("entity label", [e.name for e in entity]),
        ("stance label", [s.name for s in stance]),
        ("stance target", [t.id for t in targets]),
    ):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UserError(f"{where}: duplicate {kind}: {', '.join(dupes)}")
    if data["not_about_label"] in {s.name for s in stance}:
        raise UserError(f"{where}: not_about_label {data['not_about_label']!r} is also a stance label")
    polar = tuple(data.get("polar_stance_labels") or ())
    unknown = [name for name in polar if name not in {s.name for s in stance}]
    if unknown:
        raise UserError(f"{where}: polar_stance_labels {', '.join(unknown)} not among the stance labels")
    return Scheme(
        scheme_version=data["scheme_version"],
        language=data["language"],
        entity_labels=entity,
        stance_labels=stance,
        not_about_label=data["not_about_label"],
        stance_targets=targets,
        mention_stance=data["mention_stance"],
        source_path=source_path,
        polar_stance_labels=polar,
        span_overlap=data.get("span_overlap", "none"),
    )


def default_scheme_path() -> Path:
    return in_project(SCHEME_YAML)


def load_scheme(path: Path | None = None) -> Scheme:
    path = path or default_scheme_path()
    return scheme_from_dict(read_yaml_mapping(path, "scheme"), path)


def sync_derived_files(scheme: Scheme, root: Path | None = None) -> list[Path]:
    """Write every derived file that differs; returns the paths changed."""
    root = root or project_root()
    changed = []
    derived = scheme.derived_files()
    for rel, content in derived.items():
        if rel.endswith(".schema.json"):
            check_json_schema(rel, orjson.loads(content))
    for rel, content in derived.items():
        path = root / rel
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            continue
        with atomic_write(path, "w") as handle:
            handle.write(content)
        changed.append(path)
    return changed


def check_json_schema(name: str, schema: dict[str, Any]) -> None:
    """Meta-validate a schema against draft 2020-12 with the reference implementation (`jsonschema`).

    The fast validator on the hot path (`jsonschema_rs`) is lenient about malformed schemas; a
    derived schema that the reference refuses must never be written.
    """
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UserError(f"{name}: not a valid draft 2020-12 JSON Schema ({exc.message})") from None


def out_of_sync(scheme: Scheme, root: Path | None = None) -> list[str]:
    root = root or project_root()
    return [
        rel
        for rel, content in scheme.derived_files().items()
        if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != content
    ]


def record_validator(kind: str) -> Validator:
    """Validator for `annotation`, `gold` or `predictions` records (derived schemas)."""
    return validator(f"{kind}.schema.json")


def overlap_violations(
    entities: Sequence[Mapping[str, Any]], rule: str
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Pairs of spans that break the scheme's `span_overlap` rule ("none", "nested" or "any").

    Under "none" any shared character breaks it; under "nested" a span may lie inside another but
    two spans may not cross or coincide; "any" allows everything (identical spans with the same
    label are still reported: they are one span marked twice)."""
    ordered = sorted(entities, key=lambda e: (e["start"], -e["end"]))
    pairs = []
    for index, a in enumerate(ordered):
        for b in ordered[index + 1 :]:
            if b["start"] >= a["end"]:
                break
            same = (a["start"], a["end"]) == (b["start"], b["end"])
            if rule == "any" and not (same and a["label"] == b["label"]):
                continue
            if rule == "nested" and not same and b["end"] <= a["end"]:
                continue
            pairs.append((a, b))
    return pairs
