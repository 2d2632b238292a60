"""Drive Label Studio's labelling screen in headless Chromium the way an annotator does.

Used by `tests/studio/test_browser.py`. Everything goes through real input events: the
login form is typed into, labels and radio buttons are clicked, and entity spans are made
by dragging the mouse across the text. The drag coordinates come from a DOM Range over the
rendered text nodes, so the browser itself decides which characters end up selected -
that is what makes the offsets it reports worth checking.

Only Debian's `chromium` is used (Playwright's own browser download cannot work offline).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM_ENV = "NEWSSTANCE_CHROMIUM"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this machine's closed network refuses many times a second.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
LOAD_TIMEOUT_MS = 60_000  # first page load after a server start compiles nothing, but fetches ~10 MB of JS
ACTION_TIMEOUT_MS = 15_000

TEXT_ROOT = ".lsf-htx-richtext"  # the <Text> tag's container; each line is a .lsf-richtext__line
ERROR_BOX = ".lsf-errors"  # where the editor lists config/data errors instead of the task
REGION = ".htx-highlight"
TOOLTIP_OPEN = ".lsf-annotation-button__tooltipContainer_open"
PER_REGION_HEADER = "Stance of the article towards the selected entity"

# Finds `needle` (the `occurrence`-th match) in the concatenated text nodes under TEXT_ROOT and
# returns viewport points inside its first and last characters (left half of the first, right
# half of the last, so a drag between them covers exactly the needle). Offsets here are JS
# string (UTF-16) indexes of the DOM text, which has no line breaks; they are only used to
# place the mouse, never compared with the export.
_LOCATE_JS = r"""
([rootSelector, needle, occurrence]) => {
  const root = document.querySelector(rootSelector);
  if (!root) return {error: 'no text root'};
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  let full = '';
  while (walker.nextNode()) { nodes.push([walker.currentNode, full.length]); full += walker.currentNode.data; }
  let start = -1;
  for (let k = 0; k <= occurrence; k++) {
    start = full.indexOf(needle, start + 1);
    if (start < 0) return {error: 'not found', text: full};
  }
  const end = start + needle.length;
  const locate = (pos) => {
    for (const [node, offset] of nodes) if (pos < offset + node.data.length) return [node, pos - offset];
    return null;
  };
  const boxOf = (from, to) => {
    const range = document.createRange();
    const [n1, o1] = locate(from);
    const [n2, o2] = locate(to - 1);
    range.setStart(n1, o1);
    range.setEnd(n2, o2 + 1);
    return range.getBoundingClientRect();
  };
  const chars = Array.from(needle);
  const first = boxOf(start, start + chars[0].length);
  const last = boxOf(end - chars[chars.length - 1].length, end);
  return {x1: first.left + 1, y1: (first.top + first.bottom) / 2, x2: last.right - 1, y2: (last.top + last.bottom) / 2};
}
"""

_UNCOVERED_JS = r"""
([rootSelector, x1, y1, x2, y2]) => [[x1, y1], [x2, y2]].every(([x, y]) => {
  const element = document.elementFromPoint(x, y);
  return element !== null && element.closest(rootSelector) !== null;
})
"""


def chromium_path() -> str | None:
    """Debian's Chromium (`$NEWSSTANCE_CHROMIUM` overrides), or None when it is not installed."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def playwright_missing() -> str | None:
    """Why Playwright cannot be used here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the playwright package is not installed ({exc})"
    return None


@contextmanager
def browser_page(executable: str) -> Iterator[Page]:
    """One page in a fresh headless Chromium profile, closed (with its profile dir) afterwards."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="newsstance-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            locale="en-GB",
        )
        try:
            page = context.new_page()
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            page.set_default_navigation_timeout(LOAD_TIMEOUT_MS)
            yield page
        finally:
            context.close()


def log_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Fill in and send Label Studio's login form; fail loudly if it is shown again."""
    page.goto(f"{base_url}/user/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/user/login" in page.url:
        raise AssertionError(f"login as {email} failed: still on {page.url}")


def open_task(page: Page, base_url: str, project_id: int, task_id: int) -> None:
    """Open one task in the project's labelling screen and wait until the text or an error shows."""
    page.goto(f"{base_url}/projects/{project_id}/data?tab=0&task={task_id}")
    page.wait_for_selector(f"{TEXT_ROOT} .lsf-richtext__line, {ERROR_BOX}", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")


def error_messages(page: Page) -> list[str]:
    """Texts of Label Studio's error boxes on the labelling screen (config or data errors)."""
    return [text.strip() for text in page.locator(ERROR_BOX).all_inner_texts()]


def choose_label(page: Page, label: str) -> None:
    """Click an entity label button (deselecting any region first, or the click would relabel it)."""
    page.keyboard.press("Escape")
    page.locator(".lsf-labels .lsf-label__text", has_text=_exactly(label)).first.click()


def drag_over(page: Page, needle: str, occurrence: int = 0) -> None:
    """Select `needle` in the task text with a mouse drag, as a person would."""
    points: dict[str, Any] = page.evaluate(_LOCATE_JS, [TEXT_ROOT, needle, occurrence])
    if "error" in points:
        raise AssertionError(f"{needle!r} not found in the rendered text: {points}")
    page.mouse.move(points["x1"], points["y1"])
    # A tooltip (label or choice hints) may still cover the text right after a click; wait it out.
    page.wait_for_function(
        _UNCOVERED_JS, arg=[TEXT_ROOT, points["x1"], points["y1"], points["x2"], points["y2"]], timeout=10_000
    )
    page.mouse.down()
    page.mouse.move(points["x2"], points["y2"], steps=8)
    page.mouse.up()


def label_span(page: Page, label: str, needle: str, occurrence: int = 0) -> None:
    """Pick a label, then drag over the text: Label Studio creates one labelled region."""
    before = page.locator(REGION).count()
    choose_label(page, label)
    drag_over(page, needle, occurrence)
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[REGION, before], timeout=10_000
    )


def region_texts(page: Page) -> list[tuple[str, str]]:
    """(label, text) of every highlighted region in the text, in document order."""
    pairs = page.evaluate(
        "(sel) => Array.from(document.querySelectorAll(sel)).map(e => [e.dataset.label || '', e.textContent])", REGION
    )
    # data-label is "<index>:<LABEL>"
    return [(label.split(":", 1)[-1], text) for label, text in pairs]


def select_region(page: Page, text: str, header: str = PER_REGION_HEADER) -> None:
    """Click a region in the text; its per-region controls (the mention stance, under `header`) appear."""
    page.keyboard.press("Escape")
    page.locator(REGION, has_text=_exactly(text)).first.click()
    page.locator(f"xpath=//h3[normalize-space()={_xpath_literal(header)}]").wait_for(state="visible")


def delete_region(page: Page, text: str, header: str = PER_REGION_HEADER) -> None:
    """Select a region and delete it with the keyboard (Backspace, Label Studio's shortcut)."""
    select_region(page, text, header)
    before = page.locator(REGION).count()
    page.keyboard.press("Backspace")
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length < n", arg=[REGION, before], timeout=10_000
    )


def choices_under(page: Page, header: str) -> Any:
    """The Choices block that follows a visible header in the labelling config."""
    return page.locator(
        f"xpath=//h3[normalize-space()={_xpath_literal(header)}]/following-sibling::div[contains(@class,'lsf-choices')][1]"
    )


def answer(page: Page, header: str, value: str) -> None:
    """Click the radio button `value` of the question shown under `header`."""
    block = choices_under(page, header)
    selector = f"input[name={_css_string(value)}]"
    block.locator("label").filter(has=page.locator(selector)).click()
    radio = block.locator(selector)
    if not radio.is_checked():
        raise AssertionError(f"{value!r} under {header!r} did not get checked")


def submit(page: Page) -> dict[str, Any]:
    """Click Submit and return the annotation Label Studio saved (its POST response)."""
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/annotations" in r.url and "/api/tasks/" in r.url
    ) as response_info:
        page.get_by_role("button", name="Submit").click()
    response = response_info.value
    if not response.ok:
        raise AssertionError(f"submitting failed: {response.status} {response.text()[:300]}")
    return dict(response.json())


def instructions_text(page: Page) -> str:
    """Open the project's instructions from the labelling screen and return what the dialog shows."""
    page.get_by_role("button", name="Instructions").click()
    dialog = page.locator(".lsf-modal-ls_visible").filter(has_text="Instructions").last
    dialog.wait_for(state="visible")
    text = dialog.locator(".lsf-modal-ls__body").inner_text()
    dialog.locator(".lsf-modal-ls__header button").first.click()
    page.locator(".lsf-modal-ls_visible").wait_for(state="hidden", timeout=10_000)
    return text


def switch_tab(page: Page, name: str | None = None) -> None:
    """Show the annotation/prediction tab named `name` (the annotator's own, first, when None).

    Hovering a tab opens a tooltip that covers the label buttons, so the mouse is moved off
    the tabs and the tooltip waited out before anything else is clicked.
    """
    tabs = page.locator(".lsf-annotation-button")
    tab = tabs.filter(has_text=name) if name else tabs.first
    tab.click()
    selected = page.locator(".lsf-annotation-button_selected")
    (selected.filter(has_text=name) if name else selected.first).wait_for()
    page.mouse.move(5, VIEWPORT["height"] - 5)
    page.locator(TOOLTIP_OPEN).first.wait_for(state="hidden")


def annotation_tabs(page: Page) -> list[str]:
    """Names on the annotation/prediction tabs above the task (annotator e-mail or model version)."""
    return [t.strip() for t in page.locator(".lsf-annotation-button__name").all_inner_texts()]


def _exactly(text: str) -> re.Pattern[str]:
    """Match an element whose whole text is `text` (has_text alone matches substrings)."""
    return re.compile(rf"^{re.escape(text)}$")


def _xpath_literal(text: str) -> str:
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    parts = text.split('"')
    return "concat(" + ", '\"', ".join(f'"{p}"' for p in parts) + ")"


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
