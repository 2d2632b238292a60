"""`newsstance studio push`: canonical articles -> Label Studio tasks with spaCy pre-annotations.

Tasks and their predictions travel in the same import call (separately, predictions are much
slower), in batches; spaCy works on the next batch while Label Studio stores the current one.
Label Studio checks nothing on import, so every task and prediction is validated here first.

Prediction scores: every region carries the model's confidence in it and every prediction the
lowest of them (`score`), and the project's `model_version` is set to the pushing model, so
Label Studio's "Uncertainty sampling" serves the least certain tasks first.

One writer per project: the whole push runs under `writer.project_lock`, and duplicates a
writer on another machine created at the same time are removed after the import (`writer.py`).

Idempotent: a state file (`<state dir>/studio/push/<server>/<project id>.json`) maps each pushed
article id to its task id and text hash, written after every batch. When it is missing or does
not match the server's task count, it is rebuilt from the server's tasks. An article whose text
changed since it was pushed is reported and left alone, never pushed twice.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from tqdm import tqdm

from newsstance.errors import UserError
from newsstance.ids import text_sha256
from newsstance.paths import (
    ANNOTATIONS_DIR,
    ANNOTATIONS_JSONL,
    ARTICLES_GLOB,
    CONFLICTS_JSONL,
    GOLD_JSONL,
    article_paths,
    in_project,
    state_dir,
)
from newsstance.records import read_jsonl, write_json
from newsstance.scheme import ENTITIES_NAME, MENTION_STANCE_NAME, TEXT_NAME, Scheme, load_scheme
from newsstance.studio.client import Connection
from newsstance.studio.preannotate import LanguageRoutedPreannotator, Preannotator, Result, ScoringPreannotator
from newsstance.studio.project import DEFAULT_OVERLAP, DEFAULT_PROJECT, ensure_project
from newsstance.studio.writer import project_lock, remove_duplicate_tasks

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from newsstance.studio.reanchor import UpdateResult

DEFAULT_ARTICLES = ARTICLES_GLOB
DEFAULT_BATCH = 1000
TASK_FIELDS = ("text", "title", "article_id", "text_sha256", "source", "url")
ARTICLE_ID = re.compile(r"^[0-9a-f]{16}$")


# --- articles ------------------------------------------------------------------------------------


def canonical_articles(paths: Sequence[Path], limit: int | None = None) -> list[dict[str, Any]]:
    """Articles that are not duplicates of another (`duplicate_of` null), first occurrence of each id."""
    seen: set[str] = set()
    articles = []
    for path in paths:
        for record in read_jsonl(path):
            article_id = record.get("id")
            if record.get("duplicate_of") is not None or article_id in seen:
                continue
            seen.add(str(article_id))
            articles.append(record)
            if limit is not None and len(articles) >= limit:
                return articles
    return articles


def article_problems(article: dict[str, Any]) -> list[str]:
    """Why an article cannot become a task (empty list when it can)."""
    problems = []
    article_id, text = article.get("id"), article.get("text")
    if not isinstance(article_id, str) or not ARTICLE_ID.match(article_id):
        problems.append(f"bad id {article_id!r}")
    if not isinstance(text, str) or not text.strip():
        return [*problems, "empty text"]
    if text_sha256(text) != article.get("text_sha256"):
        problems.append("text_sha256 does not match the text")
    if "\r" in text or unicodedata.normalize("NFC", text) != text:
        problems.append("text is not NFC with \\n line ends (offsets would drift in the browser)")
    if not isinstance(article.get("title"), str) or not article["title"]:
        problems.append("no title")
    return problems


def task_data(article: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": article["text"],
        "title": article["title"],
        "article_id": article["id"],
        "text_sha256": article["text_sha256"],
        "source": article.get("source"),
        "url": article.get("url"),
    }


# --- validation ----------------------------------------------------------------------------------


def result_problems(result: Result, text: str, entity_names: frozenset[str]) -> list[str]:
    """Label Studio would accept all of these silently; we do not."""
    problems = []
    if result.get("from_name") != ENTITIES_NAME or result.get("to_name") != TEXT_NAME:
        problems.append(f"unknown control {result.get('from_name')!r} -> {result.get('to_name')!r}")
    if result.get("type") != "labels":
        problems.append(f"type {result.get('type')!r} is not 'labels'")
    if not isinstance(result.get("id"), str) or not result["id"]:
        problems.append("missing region id")
    value = result.get("value") or {}
    start, end = value.get("start"), value.get("end")
    if not (type(start) is int and type(end) is int and 0 <= start < end <= len(text)):
        problems.append(f"offsets {start}..{end} out of range 0..{len(text)}")
    elif text[start:end] != value.get("text"):
        problems.append(f"text[{start}:{end}] is {text[start:end]!r}, not {value.get('text')!r}")
    labels = value.get("labels")
    if not isinstance(labels, list) or len(labels) != 1 or labels[0] not in entity_names:
        problems.append(f"labels {labels!r} are not one scheme label")
    if "score" in result and not _is_probability(result["score"]):
        problems.append(f"region score {result['score']!r} is not a number in [0, 1]")
    return problems


def _is_probability(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def choice_problems(result: Result, regions: dict[str, Result], scheme: Scheme) -> list[str]:
    """A per-region mention stance (same id as its span) or a document stance answer."""
    choices = (result.get("value") or {}).get("choices")
    if result.get("to_name") != TEXT_NAME or result.get("type") != "choices":
        return [f"{result.get('from_name')!r} result must be 'choices' on {TEXT_NAME!r}"]
    if result.get("from_name") == MENTION_STANCE_NAME:
        allowed = scheme.stance_names
        region = regions.get(str(result.get("id")))
        value = result.get("value") or {}
        if region is None:
            return [f"mention stance {result.get('id')!r} has no span with that region id"]
        if (value.get("start"), value.get("end")) != (region["value"].get("start"), region["value"].get("end")):
            return [f"mention stance {result.get('id')!r} offsets differ from its span"]
    else:
        allowed = scheme.document_stance_names
    if not isinstance(choices, list) or len(choices) != 1 or choices[0] not in allowed:
        return [f"{result.get('from_name')}: choices {choices!r} are not one of {allowed}"]
    return []


def task_problems(task: dict[str, Any], scheme: Scheme, entity_names: frozenset[str] | None = None) -> list[str]:
    data = task.get("data") or {}
    text = data.get("text")
    if not isinstance(text, str) or not text:
        return ["task has no text"]
    entity_names = entity_names or frozenset(scheme.entity_names)
    choice_controls = {target.control_name for target in scheme.stance_targets}
    if scheme.mention_stance:
        choice_controls.add(MENTION_STANCE_NAME)
    problems = [f"data.{key} missing" for key in TASK_FIELDS if key not in data]
    if text_sha256(text) != data.get("text_sha256"):
        problems.append("data.text_sha256 does not match data.text")
    for prediction in task.get("predictions") or []:
        if not prediction.get("model_version"):
            problems.append("prediction without model_version")
        if "score" in prediction and not _is_probability(prediction["score"]):
            problems.append(f"prediction score {prediction['score']!r} is not a number in [0, 1]")
        results = prediction.get("result") or []
        spans = [r for r in results if r.get("from_name") not in choice_controls]
        ids = [r.get("id") for r in spans]
        if len(ids) != len(set(ids)):
            problems.append("duplicate region ids in a prediction")
        for result in spans:
            problems += result_problems(result, text, entity_names)
        regions = {r["id"]: r for r in spans if isinstance(r.get("id"), str)}
        for result in results:
            if result.get("from_name") in choice_controls:
                problems += choice_problems(result, regions, scheme)
    return problems


def build_tasks(
    articles: Sequence[dict[str, Any]],
    predictions: Sequence[list[Result] | None] | None,
    model_version: str | None,
    scheme: Scheme,
    scores: Sequence[float | None] | None = None,
    model_versions: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """Tasks with inline predictions (and their scores), each validated; a bad one raises before anything is sent.

    An article whose prediction is None (its language has no model) gets no prediction at all.
    """
    tasks = []
    entity_names = frozenset(scheme.entity_names)
    for index, article in enumerate(articles):
        task: dict[str, Any] = {"data": task_data(article)}
        results = predictions[index] if predictions is not None else None
        if results is not None:
            version = model_versions[index] if model_versions is not None else None
            prediction: dict[str, Any] = {"model_version": version or model_version, "result": results}
            score = scores[index] if scores is not None else None
            if score is not None:
                prediction["score"] = score
            task["predictions"] = [prediction]
        problems = task_problems(task, scheme, entity_names)
        if problems:
            raise UserError(f"refusing to push article {article.get('id')}: {'; '.join(problems[:3])}")
        tasks.append(task)
    return tasks


# --- state ---------------------------------------------------------------------------------------


def server_key(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", re.sub(r"^https?://", "", url)).strip("_")


def default_state_path(url: str, project_id: int) -> Path:
    return state_dir() / "studio" / "push" / server_key(url) / f"{project_id}.json"


@dataclass
class PushState:
    """article id -> {task_id, text_sha256} of what is already in the project.

    `project_created_at` tells a recreated project (same id on a new server) from ours;
    `task_count` is how many tasks the project held after our last write, so tasks added or
    deleted behind our back trigger a rebuild from the server.
    """

    path: Path
    url: str
    project_id: int
    project_created_at: str
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_count: int = 0
    rebuilt: bool = False  # read from the server this run (someone else changed the project)

    @classmethod
    def load(cls, path: Path, url: str, project_id: int, project_created_at: str) -> PushState | None:
        try:
            data = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        if data.get("project_id") != project_id or data.get("project_created_at") != project_created_at:
            return None
        return cls(path, url, project_id, project_created_at, data.get("tasks") or {}, int(data.get("task_count", -1)))

    def save(self) -> None:
        write_json(
            self.path,
            {
                "url": self.url,
                "project_id": self.project_id,
                "project_created_at": self.project_created_at,
                "task_count": self.task_count,
                "tasks": self.tasks,
            },
        )


def server_tasks(client: LabelStudio, conn: Connection, project_id: int) -> dict[str, dict[str, Any]]:
    """article id -> {task_id, text_sha256} read from the server (tasks of other origin are ignored)."""
    with conn.errors("reading the project's tasks"):
        raw = b"".join(client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True))
    found: dict[str, dict[str, Any]] = {}
    for task in sorted(orjson.loads(raw), key=lambda t: t["id"]):
        data = task.get("data") or {}
        article_id = data.get("article_id")
        if not isinstance(article_id, str) or article_id in found:
            continue
        text = data.get("text")
        found[article_id] = {
            "task_id": task["id"],
            "text_sha256": data.get("text_sha256") or (text_sha256(text) if text else None),
        }
    return found


def project_task_count(client: LabelStudio, conn: Connection, project_id: int) -> int:
    with conn.errors("reading the project"):
        return int(client.projects.get(project_id).model_dump().get("task_number") or 0)


def load_or_reconcile_state(client: LabelStudio, conn: Connection, project: dict[str, Any], path: Path) -> PushState:
    """The local state when it agrees with the server's task count, else rebuilt from the server."""
    project_id, created_at = int(project["id"]), str(project.get("created_at"))
    state = PushState.load(path, conn.url, project_id, created_at)
    count = project_task_count(client, conn, project_id)
    if state is not None and state.task_count == count:
        return state
    state = PushState(path, conn.url, project_id, created_at, task_count=count, rebuilt=count > 0)
    if count:
        tqdm.write(f"reconciling push state with the {count} task(s) on the server", file=sys.stderr)
        state.tasks = server_tasks(client, conn, project_id)
    state.save()
    return state


# --- push ----------------------------------------------------------------------------------------


@dataclass
class PushResult:
    project_id: int
    project_title: str
    project_created: bool
    config_updated: bool
    pushed: int = 0
    already_present: int = 0
    predictions: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    model_version: str | None = None
    task_ids: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    update: UpdateResult | None = None  # `--update`: changed articles carried over to their new text
    duplicates_removed: int = 0
    expected_task_count: int = 0  # tasks in the project if nobody else wrote to it meanwhile
    reconciled: bool = False  # the push state was rebuilt from the server (another writer was there)
    not_preannotated: dict[str, int] = field(default_factory=dict)  # language -> tasks without a model

    def summary(self) -> str:
        parts = [
            f"project {self.project_title!r} (id {self.project_id}"
            + (", created" if self.project_created else "")
            + (", config updated" if self.config_updated else "")
            + ")",
            f"{self.pushed} task(s) pushed",
            f"{self.predictions} prediction region(s)",
            f"{self.already_present} already there",
        ]
        if self.changed and self.update is None:
            parts.append(f"{len(self.changed)} changed since pushed (NOT pushed; --update re-anchors them)")
        elif self.update is not None:
            parts.append(self.update.summary())
        if self.duplicates_removed:
            parts.append(f"{self.duplicates_removed} duplicate(s) from a concurrent push removed")
        if self.not_preannotated:
            counts = " ".join(f"{language} {n}" for language, n in sorted(self.not_preannotated.items()))
            parts.append(f"not pre-annotated (no model for the language): {counts}")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


# An import call in flight: its future, the articles and the tasks it carries.
Pending = tuple[Future[Any], Sequence[dict[str, Any]], list[dict[str, Any]]]


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def push_articles(
    conn: Connection,
    articles: Sequence[dict[str, Any]],
    *,
    project: str = DEFAULT_PROJECT,
    state_path: Path | None = None,
    lock_dir: Path | None = None,
    **options: Any,
) -> PushResult:
    """Push articles as tasks under the project's write lock, then remove duplicates a concurrent
    writer elsewhere created (see `writer.py`). Options: those of `_push_unlocked`."""
    with project_lock(conn.url, project, lock_dir or (state_path.parent if state_path else None)):
        result = _push_unlocked(conn, articles, project=project, state_path=state_path, **options)
        client = conn.client()
        # Cheap check first: when the task count is what our own imports explain, no other writer
        # added tasks meanwhile. Of two concurrent writers the later check sees all tasks of both.
        if result.reconciled or (
            result.pushed and project_task_count(client, conn, result.project_id) != result.expected_task_count
        ):
            report = remove_duplicate_tasks(client, conn, result.project_id, mine=set(result.task_ids.values()))
            ours = set(report.removed) & set(result.task_ids.values())
            if report.removed or report.left_for_their_writer:
                # Our state may map articles to deleted tasks, and recent duplicates of another writer
                # need another look: the next push rebuilds the state from the server and checks again.
                (state_path or default_state_path(conn.url, result.project_id)).unlink(missing_ok=True)
                kept = report.kept
                result.task_ids.update({a: kept[a] for a, t in result.task_ids.items() if t in ours and a in kept})
            result.duplicates_removed = len(report.removed)
            result.pushed -= len(ours)
            result.already_present += len(ours)
    return result


def _push_unlocked(
    conn: Connection,
    articles: Sequence[dict[str, Any]],
    *,
    project: str = DEFAULT_PROJECT,
    scheme: Scheme | None = None,
    preannotator: Preannotator | None = None,
    preannotator_factory: Callable[[], Preannotator] | None = None,
    batch_size: int = DEFAULT_BATCH,
    state_path: Path | None = None,
    guidelines: str | None = None,
    overlap: int = DEFAULT_OVERLAP,
    progress: bool = True,
    update: bool = False,
    annotations_dir: Path | None = None,
) -> PushResult:
    """Push articles (already filtered to canonical ones) as tasks; returns what happened.

    `preannotator_factory` is called only when there is something new to push (loading a model
    takes seconds; a push with nothing new should not pay for it).
    `update`: articles whose text changed since pushed get their task text replaced and their
    annotations, predictions and local records/gold re-anchored (`newsstance.studio.reanchor`)."""
    started = time.perf_counter()
    scheme = scheme or load_scheme()
    _check_push(articles, batch_size)

    client = conn.client()
    sync = ensure_project(client, conn, project, scheme, guidelines=guidelines, overlap=overlap)
    project_id = int(sync.project["id"])
    state = load_or_reconcile_state(client, conn, sync.project, state_path or default_state_path(conn.url, project_id))
    result = PushResult(
        project_id,
        project,
        sync.created,
        sync.config_updated,
        model_version=preannotator.model_version if preannotator else None,
    )
    new = _sort_articles(articles, state, result)
    if preannotator is None and preannotator_factory is not None and new:
        preannotator = preannotator_factory()
    result.model_version = preannotator.model_version if preannotator else None
    _send_batches(conn, client, new, state, result, preannotator, scheme, batch_size=batch_size, progress=progress)
    if isinstance(preannotator, LanguageRoutedPreannotator):
        result.not_preannotated = dict(preannotator.skipped)
    if result.pushed and result.model_version and sync.project.get("model_version") != result.model_version:
        # Uncertainty sampling only considers predictions of the project's current model version.
        with conn.errors(f"setting the model version of project {project!r}"):
            client.projects.update(project_id, model_version=result.model_version)
    if update and result.changed:
        _update_changed(conn, client, articles, state, result, annotations_dir)
    result.expected_task_count = state.task_count
    result.reconciled = state.rebuilt
    result.seconds = time.perf_counter() - started
    return result


def _check_push(articles: Sequence[dict[str, Any]], batch_size: int) -> None:
    """Refuse the whole push before touching the server: Label Studio checks nothing on import."""
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    bad = [(a.get("id"), problems) for a in articles if (problems := article_problems(a))]
    if bad:
        shown = "; ".join(f"{aid}: {', '.join(p)}" for aid, p in bad[:3])
        raise UserError(f"{len(bad)} article(s) cannot be pushed - {shown}")


def _sort_articles(articles: Sequence[dict[str, Any]], state: PushState, result: PushResult) -> list[dict[str, Any]]:
    """The articles to push (not in the state yet, first occurrence of each id); those pushed with
    another text go to `result.changed`, never pushed twice, and the unchanged ones are counted."""
    new, seen = [], set()
    for article in articles:
        if article["id"] in seen:
            continue
        seen.add(article["id"])
        known = state.tasks.get(article["id"])
        if known is None:
            new.append(article)
        elif known.get("text_sha256") != article["text_sha256"]:
            result.changed.append(
                {
                    "article_id": article["id"],
                    "task_id": known.get("task_id"),
                    "pushed_sha256": known.get("text_sha256"),
                    "now_sha256": article["text_sha256"],
                }
            )
        else:
            result.already_present += 1
    return new


def _send_batches(
    conn: Connection,
    client: LabelStudio,
    new: Sequence[dict[str, Any]],
    state: PushState,
    result: PushResult,
    preannotator: Preannotator | None,
    scheme: Scheme,
    *,
    batch_size: int,
    progress: bool,
) -> None:
    """Import the new articles batch by batch, pre-annotating the next batch while a single sender
    thread waits for Label Studio to store the current one; each batch is recorded in the state
    as soon as its import returns, even when a later one fails, so a rerun does not push it twice."""
    project_id = result.project_id
    bar = tqdm(total=len(new), desc="push", unit="task", disable=not progress or not new, file=sys.stderr)
    with ThreadPoolExecutor(max_workers=1) as sender:
        pending: Pending | None = None
        try:
            for batch in _batches(new, batch_size):
                # Pre-annotate this batch while Label Studio stores the previous one.
                predictions, scores, versions = _predict(preannotator, batch)
                tasks = build_tasks(batch, predictions, result.model_version, scheme, scores, versions)
                if pending is not None:
                    done, pending = pending, None
                    _record_batch(done, state, result, conn, bar)
                future = sender.submit(
                    client.projects.import_tasks,
                    id=project_id,
                    request=tasks,  # type: ignore[arg-type]  # plain dicts are what the API takes
                    return_task_ids=True,
                )
                pending = (future, batch, tasks)
            if pending is not None:
                done, pending = pending, None
                _record_batch(done, state, result, conn, bar)
        finally:
            if pending is not None:  # failed mid-way: still record the batch already in flight
                with contextlib.suppress(Exception):
                    _record_batch(pending, state, result, conn, bar)
    bar.close()


def _update_changed(
    conn: Connection,
    client: LabelStudio,
    articles: Sequence[dict[str, Any]],
    state: PushState,
    result: PushResult,
    annotations_dir: Path | None,
) -> None:
    """`--update`: move the changed articles' tasks and local records to the new text, then record
    the new text hashes so the next push sees these articles as unchanged."""
    from newsstance.studio.reanchor import update_changed_articles

    folder = annotations_dir or in_project(ANNOTATIONS_DIR)
    by_id = {article["id"]: article for article in articles}
    result.update = update_changed_articles(
        conn,
        client,
        result.changed,
        by_id,
        annotations_path=folder / ANNOTATIONS_JSONL.name,
        gold_path=folder / GOLD_JSONL.name,
        conflicts_path=folder / CONFLICTS_JSONL.name,
    )
    for entry in result.changed:
        state.tasks[entry["article_id"]] = {"task_id": entry["task_id"], "text_sha256": entry["now_sha256"]}
    state.save()


def _predict(
    preannotator: Preannotator | None, articles: Sequence[dict[str, Any]]
) -> tuple[list[list[Result] | None] | None, list[float | None] | None, list[str | None] | None]:
    """Results per article (None: not pre-annotated), a prediction score per article when the
    preannotator scores its output, and the model version per article when it routes by language."""
    if preannotator is None:
        return None, None, None
    texts = [article["text"] for article in articles]
    if isinstance(preannotator, LanguageRoutedPreannotator):
        routed = preannotator.predict_articles(texts, [article.get("language") for article in articles])
        return (
            [item[0] if item else None for item in routed],
            [item[1] if item else None for item in routed],
            [item[2] if item else None for item in routed],
        )
    if isinstance(preannotator, ScoringPreannotator):
        scored = preannotator.predict_scored(texts)
        return [results for results, _ in scored], [score for _, score in scored], None
    return list(preannotator.predict(texts)), None, None


def _record_batch(pending: Pending, state: PushState, result: PushResult, conn: Connection, bar: Any) -> None:
    """Wait for one import call, then record its task ids in the state file."""
    future, batch, tasks = pending
    with conn.errors(f"importing {len(tasks)} task(s)"):
        response = future.result()
    task_ids = list(getattr(response, "task_ids", None) or [])
    if len(task_ids) != len(batch):
        raise UserError(
            f"Label Studio returned {len(task_ids)} task id(s) for {len(batch)} task(s); "
            "the push state may be off - the next push rebuilds it from the server"
        )
    for article, task_id in zip(batch, task_ids, strict=True):
        state.tasks[article["id"]] = {"task_id": int(task_id), "text_sha256": article["text_sha256"]}
        result.task_ids[article["id"]] = int(task_id)
    state.task_count += len(batch)
    state.save()
    result.pushed += len(batch)
    result.predictions += sum(len(p["result"]) for t in tasks for p in t.get("predictions", []))
    bar.update(len(batch))


def push(
    conn: Connection,
    *,
    project: str = DEFAULT_PROJECT,
    articles_glob: str | None = None,
    limit: int | None = None,
    preannotate: str = "spacy",
    model: str | None = None,
    label_map: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    state_path: Path | None = None,
    overlap: int = DEFAULT_OVERLAP,
    progress: bool = True,
    update: bool = False,
) -> PushResult:
    """The whole `newsstance studio push`: read the corpus, pre-annotate, push."""
    from newsstance.ner import DEFAULT_MODEL

    paths = article_paths(articles_glob)
    if not paths:
        raise UserError(f"no article files match {articles_glob or DEFAULT_ARTICLES} (run `newsstance normalize`)")
    articles = canonical_articles(paths, limit)
    scheme = load_scheme()
    if preannotate not in {"spacy", "none"}:
        raise UserError(f"--preannotate must be spacy or none, not {preannotate!r}")
    factory = (
        (lambda: LanguageRoutedPreannotator(scheme, model or DEFAULT_MODEL, label_map))
        if preannotate == "spacy"
        else None
    )
    return push_articles(
        conn,
        articles,
        project=project,
        scheme=scheme,
        preannotator_factory=factory,
        batch_size=batch_size,
        state_path=state_path,
        overlap=overlap,
        progress=progress,
        update=update,
    )
