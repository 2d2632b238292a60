"""End to end through Label Studio's own labelling screen, in headless Chromium.

A person logs in, opens each pushed task, drags the mouse over names to make entity spans,
deletes a wrong pre-annotation, sets a stance on some mentions and answers every document
stance question, then submits. `newsstance studio pull` must then give exactly those spans
as code-point offsets whose text matches, with their labels and stances.

The texts are chosen for what browsers and Label Studio have got wrong before: non-BMP
characters (emoji, a ZWJ sequence with a skin tone, mathematical letters), accented letters,
curly quotes, blank lines between paragraphs and a run of two spaces.

Run alone with `pytest -m browser`. Skips when Debian's chromium or the playwright package is
missing. Screenshots go to the test's temp dir; set NEWSSTANCE_SCREENSHOT_DIR (e.g.
`annotations/screenshots`) to also keep them there.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from newsstance.records import read_jsonl, write_jsonl
from newsstance.scheme import load_scheme
from newsstance.studio.client import Connection, invite_user
from newsstance.studio.identities import email_of
from newsstance.studio.preannotate import Result, entity_result
from newsstance.studio.pull import pull
from newsstance.studio.push import push_articles


def _load_helpers() -> Any:
    """`browser_helpers.py` next to this file (tests are not a package: --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location("browser_helpers", Path(__file__).with_name("browser_helpers.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bh = _load_helpers()

_CHROMIUM = bh.chromium_path()
_NO_PLAYWRIGHT = bh.playwright_missing()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.labelstudio,
    pytest.mark.xdist_group("labelstudio"),
    pytest.mark.skipif(
        _CHROMIUM is None,
        reason="Debian's chromium is not installed "
        "(apt-get install chromium fonts-noto-color-emoji; .ci/run does it) - browser test skipped",
    ),
    pytest.mark.skipif(_NO_PLAYWRIGHT is not None, reason=f"{_NO_PLAYWRIGHT} - browser test skipped"),
]

MODEL_VERSION = "stub-ner@1"  # short: the tab shows names over ~16 characters cut in the middle
ANNOTATOR_EMAIL = "browser.annotator@newsstance.test"
SCREENSHOT_ENV = "NEWSSTANCE_SCREENSHOT_DIR"


# --- the stories and what the annotator does with them -------------------------------------------


@dataclass(frozen=True)
class Span:
    label: str
    needle: str
    occurrence: int = 0  # which match of `needle` in the text
    stance: str | None = None

    def offsets(self, text: str) -> tuple[int, int]:
        """Code-point offsets of this span in `text` (Python string indexes)."""
        start = -1
        for _ in range(self.occurrence + 1):
            start = text.index(self.needle, start + 1)
        return start, start + len(self.needle)


@dataclass(frozen=True)
class Story:
    key: str
    title: str
    text: str
    predicted: tuple[Span, ...]  # pre-annotations pushed with the task
    deleted: tuple[str, ...]  # predicted regions the annotator removes (by their text)
    drawn: tuple[Span, ...]  # spans the annotator makes with the mouse
    stances: dict[str, str] = field(default_factory=dict)  # target id -> document stance

    def expected_entities(self) -> set[tuple[int, int, str, str, str | None]]:
        kept = [s for s in self.predicted if s.needle not in self.deleted]
        return {(*s.offsets(self.text), s.label, s.needle, s.stance) for s in [*kept, *self.drawn]}


STORIES = (
    Story(
        key="emoji",
        title="Fair day in Port Wrenna 🙂",
        text=(
            "Mayor Ilse Varga opened the fair with a smile 🙂 Port Wrenna had waited years for the Tidewater Dam. "
            "Firefighter 👨🏻‍🚒 Tomas Rell of the 𝔸lder Valley Brigade said the dam keeps Brackwater dry."
        ),
        predicted=(Span("PERSON", "Ilse Varga"), Span("GPE", "Tidewater")),
        deleted=("Tidewater",),  # a wrong pre-annotation the annotator removes
        drawn=(
            Span("GPE", "Port Wrenna"),  # right after 🙂
            Span("MISC", "Tidewater Dam"),
            Span("PERSON", "Tomas Rell", stance="favor"),  # right after the ZWJ sequence 👨🏻‍🚒
            Span("ORG", "𝔸lder Valley Brigade"),  # starts with a non-BMP letter
            Span("GPE", "Brackwater"),
        ),  # after three non-BMP characters
        stances={"tidewater_dam": "favor", "carbon_levy": "not_about"},
    ),
    Story(
        key="accents",
        title="Growers’ union rejects the “unfair” levy",
        text=(
            "“We will not pay,” said Zoë Márquez-Öberg, chair of the Søndervik Growers’ Union, after the "
            "carbon levy vote in Île-Réunie. The economist Jörg Ångström called the levy ‘overdue’."
        ),
        predicted=(Span("GPE", "Île-Réunie"),),
        deleted=(),
        drawn=(
            Span("PERSON", "Zoë Márquez-Öberg", stance="against"),  # across accented words
            Span("ORG", "Søndervik Growers’ Union"),  # curly apostrophe inside
            Span("PERSON", "Jörg Ångström", stance="favor"),
        ),
        stances={"tidewater_dam": "not_about", "carbon_levy": "against"},
    ),
    Story(
        key="paragraphs",
        title="Quillmoor votes on the dam",
        text=(
            "The Quillmoor Council met on Tuesday.\n\n"
            "Councillor Oskar Feld said the Tidewater Dam would flood Harbin Cove.\n\n"
            "Residents of Harbin Cove will march to the Old  Mill Trust on Sunday."
        ),
        predicted=(Span("LOC", "Harbin Cove"),),
        deleted=(),
        drawn=(
            Span("ORG", "Quillmoor Council"),
            Span("PERSON", "Oskar Feld", stance="against"),  # second paragraph
            Span("LOC", "Harbin Cove", occurrence=1),  # third paragraph, after two blank lines
            Span("ORG", "Old  Mill Trust"),
        ),  # two spaces inside: Label Studio's value.text collapses them
        stances={"tidewater_dam": "against", "carbon_levy": "not_about"},
    ),
)


class FixedPreannotator:
    """Stands in for spaCy: the pre-annotations each story declares, through push's Preannotator hook."""

    model_version = MODEL_VERSION

    def __init__(self, stories: Sequence[Story]):
        self.by_text = {story.text: story for story in stories}

    def predict(self, texts: Sequence[str]) -> list[list[Result]]:
        predictions = []
        for text in texts:
            spans = self.by_text[text].predicted
            predictions.append(
                [entity_result(f"p{i}", *span.offsets(text), text, span.label) for i, span in enumerate(spans)]
            )
        return predictions


def article_record(make_article: Any, story: Story) -> dict[str, Any]:
    return make_article(story.title, story.text, source="The Wrenna Courier", key=f"browser-{story.key}")


def per_region_header(label_config: str) -> str:
    """The header shown above the mention stance (inside the View that appears when a region is selected)."""
    root = ET.fromstring(label_config)
    for view in root.iter("View"):
        if view.get("visibleWhen") == "region-selected":
            header = view.find("Header")
            if header is not None and header.get("value"):
                return str(header.get("value"))
    raise AssertionError("the labelling config has no header for the per-region (mention) stance")


# --- fixtures: push, annotate in the browser, pull -----------------------------------------------


@dataclass
class Pushed:
    conn: Connection
    project_title: str
    project_id: int
    task_ids: dict[str, int]  # story key -> task id
    articles_glob: str


@dataclass
class Seen:
    """What the annotator saw and did, per story key."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    tabs: dict[str, list[str]] = field(default_factory=dict)
    prediction_regions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    prefilled_regions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    final_regions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    instructions: str = ""
    screenshots: list[Path] = field(default_factory=list)


@pytest.fixture(scope="module")
def pushed(
    ls_conn: Connection, make_article: Any, unique_title: Any, tmp_path_factory: pytest.TempPathFactory
) -> Pushed:
    """The stories pushed as tasks with their pre-annotations, through the product's push."""
    work = tmp_path_factory.mktemp("browser-push")
    articles = [article_record(make_article, story) for story in STORIES]
    write_jsonl(work / "articles.jsonl", articles)
    title = unique_title("browser")
    result = push_articles(
        ls_conn,
        articles,
        project=title,
        preannotator=FixedPreannotator(STORIES),
        state_path=work / "push-state.json",
        overlap=1,
        progress=False,
    )
    assert result.pushed == len(STORIES), result.summary()
    ids = {story.key: result.task_ids[article["id"]] for story, article in zip(STORIES, articles, strict=True)}
    return Pushed(ls_conn, title, result.project_id, ids, str(work / "articles*.jsonl"))


@pytest.fixture(scope="module")
def annotator(ls_conn: Connection) -> tuple[str, str]:
    """A person who joined through the organisation's invite link: (email, password)."""
    password = "browser-" + os.urandom(6).hex()
    invite_user(ls_conn, ANNOTATOR_EMAIL, password)
    return ANNOTATOR_EMAIL, password


def _screenshot(page: Any, path: Path) -> Path:
    """A small PNG of the labelling screen (top part, reduced palette when Pillow is there)."""
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": bh.VIEWPORT["width"], "height": 620})
    try:
        from PIL import Image
    except ImportError:
        return path
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def _annotate(
    page: Any, story: Story, pushed: Pushed, seen: Seen, headers: dict[str, str], mention_header: str, shots: Path
) -> None:
    """Everything an annotator does on one task, recording what the screen shows on the way."""
    bh.open_task(page, pushed.conn.url, pushed.project_id, pushed.task_ids[story.key])
    seen.errors[story.key] = bh.error_messages(page)
    if not seen.instructions:
        seen.instructions = bh.instructions_text(page)
    seen.tabs[story.key] = bh.annotation_tabs(page)
    seen.prefilled_regions[story.key] = bh.region_texts(page)
    # Look at the prediction itself (read-only tab named after the model version), then go back.
    bh.switch_tab(page, MODEL_VERSION)
    seen.prediction_regions[story.key] = bh.region_texts(page)
    if story.key == "emoji":
        seen.screenshots.append(_screenshot(page, shots / "predictions.png"))
    bh.switch_tab(page)

    for needle in story.deleted:
        bh.delete_region(page, needle, mention_header)
    for span in story.drawn:
        bh.label_span(page, span.label, span.needle, span.occurrence)
    for span in story.drawn:
        if span.stance:
            bh.select_region(page, span.needle, mention_header)
            bh.answer(page, mention_header, span.stance)
    last_with_stance = [s for s in story.drawn if s.stance][-1]
    bh.select_region(page, last_with_stance.needle, mention_header)  # its stance shows in the screenshot
    for target_id, value in story.stances.items():
        bh.answer(page, headers[target_id], value)
    seen.final_regions[story.key] = bh.region_texts(page)
    if story.key == "emoji":
        seen.screenshots.append(_screenshot(page, shots / "labelling.png"))
    bh.submit(page)


@pytest.fixture(scope="module")
def seen(pushed: Pushed, annotator: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Seen:
    """One browser session: log in, annotate every story, submit."""
    scheme = load_scheme()
    config = scheme.label_config()
    headers = {target.id: target.question for target in scheme.stance_targets}
    mention_header = per_region_header(config)
    shots = tmp_path_factory.mktemp("screenshots")
    observed = Seen()
    assert _CHROMIUM is not None
    with bh.browser_page(_CHROMIUM) as page:
        bh.log_in(page, pushed.conn.url, *annotator)
        try:
            for story in STORIES:
                _annotate(page, story, pushed, observed, headers, mention_header, shots)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"))
            print(f"screen at the failure: {shots / 'failure.png'}")
            raise
    keep = os.environ.get(SCREENSHOT_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in observed.screenshots:
            shutil.copyfile(shot, Path(keep) / shot.name)
    return observed


@pytest.fixture(scope="module")
def pulled(seen: Seen, pushed: Pushed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`newsstance studio pull` (its Python API) into a temp dir: records by story key, conflicts, raw export."""
    work = tmp_path_factory.mktemp("browser-pull")
    out = work / "annotations.jsonl"
    result = pull(
        pushed.conn,
        project=pushed.project_title,
        out=out,
        exports_dir=work / "exports",
        state_path=work / "pull-state.json",
        articles_glob=pushed.articles_glob,
        progress=False,
    )
    records = list(read_jsonl(out))
    by_task = {rec["task_id"]: rec for rec in records}
    raw = [
        task
        for path in sorted((work / "exports").glob("*.json.gz"))
        for task in orjson.loads(gzip.decompress(path.read_bytes()))
    ]
    return {
        "result": result,
        "work": work,
        "records": {key: by_task.get(task_id) for key, task_id in pushed.task_ids.items()},
        "all_records": records,
        "conflicts": list(read_jsonl(work / "conflicts.jsonl")) if (work / "conflicts.jsonl").exists() else [],
        "raw": {t["id"]: t for t in raw},
    }


# --- what the annotator sees ---------------------------------------------------------------------


def test_labelling_config_renders_without_error_box(seen: Seen) -> None:
    assert seen.errors == {story.key: [] for story in STORIES}


def test_error_box_check_sees_a_broken_config(
    ls_conn: Connection, ls_client: Any, unique_title: Any, annotator: tuple[str, str]
) -> None:
    """The check above must be able to fail: a config Label Studio's server lets through but its editor
    rejects (an invalid `granularity`) shows the error box instead of the task."""
    config = load_scheme().label_config()
    project = ls_client.projects.create(title=unique_title("browser-broken"), label_config=config)
    ls_client.projects.update(
        id=project.id, label_config=config.replace('granularity="symbol"', 'granularity="by-the-letter"')
    )
    (task_id,) = ls_client.projects.import_tasks(
        id=project.id, request=[{"data": {"text": "Any text.", "title": "T"}}], return_task_ids=True
    ).task_ids
    assert _CHROMIUM is not None
    with bh.browser_page(_CHROMIUM) as page:
        bh.log_in(page, ls_conn.url, *annotator)
        bh.open_task(page, ls_conn.url, project.id, task_id)
        errors = bh.error_messages(page)
    assert any("granularity" in error for error in errors), errors


def test_guidelines_are_reachable_from_the_task(seen: Seen, repo_root: Path) -> None:
    guidelines = (repo_root / "annotations" / "guidelines.md").read_text(encoding="utf-8")
    heading = next(line.lstrip("# ").strip() for line in guidelines.splitlines() if line.startswith("# "))
    assert heading in seen.instructions
    for label in load_scheme().entity_names:
        assert label in seen.instructions, f"{label} not explained in the instructions dialog"


def test_preannotations_are_shown_as_predictions(seen: Seen) -> None:
    for story in STORIES:
        predicted = sorted((span.label, span.needle) for span in story.predicted)
        assert MODEL_VERSION in seen.tabs[story.key], f"{story.key}: no prediction tab in {seen.tabs[story.key]}"
        assert sorted(seen.prediction_regions[story.key]) == predicted, story.key
        # ... and they pre-fill the annotator's own annotation, ready to be corrected.
        assert sorted(seen.prefilled_regions[story.key]) == predicted, story.key


def test_regions_on_screen_before_submit(seen: Seen) -> None:
    for story in STORIES:
        expected = sorted((label, text) for _, _, label, text, _ in story.expected_entities())
        assert sorted(seen.final_regions[story.key]) == expected, story.key


def test_screenshots_are_small_pngs(seen: Seen) -> None:
    for shot in seen.screenshots:
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", shot
        assert len(data) < 150_000, f"{shot.name} is {len(data)} bytes"


# --- what pull makes of it -----------------------------------------------------------------------


def test_pull_gives_exactly_the_spans_drawn(pulled: dict[str, Any]) -> None:
    for story in STORIES:
        record = pulled["records"][story.key]
        assert record is not None, f"{story.key}: no record pulled (conflicts: {pulled['conflicts']})"
        got = {(e["start"], e["end"], e["label"], e["text"], e["stance"]) for e in record["entities"]}
        assert got == story.expected_entities(), story.key
        for entity in record["entities"]:
            assert story.text[entity["start"] : entity["end"]] == entity["text"]
        assert len(record["entities"]) == len(got), f"{story.key}: duplicate spans"


def test_pull_gives_the_document_stances_and_annotator(pulled: dict[str, Any]) -> None:
    for story in STORIES:
        record = pulled["records"][story.key]
        assert record["stances"] == story.stances, story.key
        assert email_of(record["annotator"], pulled["work"]) == ANNOTATOR_EMAIL and "@" not in record["annotator"]
        assert record["cancelled"] is False


def test_pull_reports_no_conflicts(pulled: dict[str, Any]) -> None:
    assert pulled["conflicts"] == []
    assert len(pulled["all_records"]) == len(STORIES)


def test_browser_offsets_are_code_points(pulled: dict[str, Any], pushed: Pushed) -> None:
    """What the pull relies on, measured: Label Studio 1.23 in Chromium counts code points for every
    character class here; only `value.text` differs, where it collapses a run of spaces."""
    disagreements = []
    for story in STORIES:
        task = pulled["raw"][pushed.task_ids[story.key]]
        (annotation,) = task["annotations"]
        for result in annotation["result"]:
            value = result["value"]
            if result["from_name"] != "entities":
                continue
            at_offsets = story.text[value["start"] : value["end"]]
            if " ".join(at_offsets.split()) != " ".join(value["text"].split()):
                disagreements.append((story.key, value["start"], value["end"], value["text"], at_offsets))
    assert disagreements == [], f"browser offsets are not code points for: {disagreements}"
