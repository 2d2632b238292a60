"""One writer per project: what keeps two `studio push` (or `review`) runs from duplicating tasks.

Label Studio has no unique key on task data, so two pushes that both see an article missing
both import it. Two guards, because either alone is not enough:

- a local lock (`fcntl`, one file per server and project under the state dir) serialises
  writers on one machine - the case of the managed server; the second push waits, then finds
  every article already there;
- a check against the server after importing, for writers on different machines: when the
  project holds more tasks than our own imports explain (one cheap request), re-list the
  project's article ids; for every article now held by several tasks the oldest task wins, and
  each writer deletes its OWN newer, unannotated duplicates. Task ids grow in commit order on
  SQLite, so the writer holding the newer task always checks after the older one is visible:
  exactly one task per article remains, none is ever lost (the oldest is never deleted), and no
  writer deletes a task another writer still believes it created (its state stays true).
  Leftovers - a writer killed before its check, or on PostgreSQL a lower id committed after the
  other writer checked - are removed by the next writer that sees them once they are older than
  `SETTLE_SECONDS` (their writer is done by then); annotated duplicates are reported, never deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import sys
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from newsstance.errors import UserError
from newsstance.paths import state_dir

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from newsstance.studio.client import Connection

DEFAULT_LOCK_TIMEOUT = 1800.0  # a big push takes minutes; waiting longer means something hangs
SETTLE_SECONDS = 300.0  # a duplicate this old is a leftover: the push that made it has checked by then


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "_"


def default_lock_dir(url: str) -> Path:
    return state_dir() / "studio" / "locks" / _slug(re.sub(r"^https?://", "", url))


@contextlib.contextmanager
def project_lock(
    url: str, project: str, lock_dir: Path | None = None, *, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[Path]:
    """Hold the per-project write lock; wait (saying so once) while another writer holds it."""
    folder = lock_dir or default_lock_dir(url)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{_slug(project)}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if not announced:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                print(f"waiting for {holder} writing to project {project!r} ...", file=sys.stderr, flush=True)
                announced = True
            if time.monotonic() > deadline:
                raise UserError(f"project {project!r} stayed locked by another writer for {timeout:.0f} s ({path})")
            time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the flock


@dataclass
class DuplicateReport:
    """What the post-import check found and did."""

    removed: list[int] = field(default_factory=list)
    left_for_their_writer: list[int] = field(default_factory=list)  # others' recent duplicates
    kept: dict[str, int] = field(default_factory=dict)  # article id -> the task kept, for duplicated articles
    annotated_duplicates: dict[str, list[int]] = field(default_factory=dict)


EXPORT_ATTEMPTS = 4


def _export_tasks(client: LabelStudio, conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """The project's tasks from a full JSON export.

    While another writer imports into the same project, Label Studio (seen on PostgreSQL) can
    answer the export with an empty or cut body; that is retried, a few times, with a pause.
    """
    for attempt in range(1, EXPORT_ATTEMPTS + 1):
        with conn.errors("re-listing the project's tasks"):
            raw = b"".join(
                client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True)
            )
        try:
            tasks = orjson.loads(raw)
        except orjson.JSONDecodeError:
            tasks = None
        if isinstance(tasks, list):
            return tasks
        if attempt < EXPORT_ATTEMPTS:
            time.sleep(0.5 * attempt)
    raise UserError(
        f"Label Studio answered the export of project {project_id} with no valid task list {EXPORT_ATTEMPTS} times "
        "(another writer busy?); run the push again"
    )


def project_task_index(client: LabelStudio, conn: Connection, project_id: int) -> dict[str, list[dict[str, Any]]]:
    """article id -> its tasks on the server ({id, annotated, age in seconds}), oldest first."""
    index: dict[str, list[dict[str, Any]]] = {}
    for task in _export_tasks(client, conn, project_id):
        article_id = (task.get("data") or {}).get("article_id")
        if isinstance(article_id, str):
            annotated = any(not a.get("was_cancelled") for a in task.get("annotations") or [])
            index.setdefault(article_id, []).append(
                {"id": int(task["id"]), "annotated": annotated, "age": _age_seconds(task.get("created_at"))}
            )
    for tasks in index.values():
        tasks.sort(key=lambda t: t["id"])
    return index


def _age_seconds(created_at: object) -> float:
    """Seconds since a task was created (0 when unknown, so it counts as recent)."""
    if not isinstance(created_at, str):
        return 0.0
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - created).total_seconds())


def remove_duplicate_tasks(
    client: LabelStudio, conn: Connection, project_id: int, mine: Collection[int] = ()
) -> DuplicateReport:
    """Keep the oldest task of every article; delete the newer unannotated duplicates that are ours
    (`mine`) or old enough to be leftovers (see module doc)."""
    from label_studio_sdk.core.api_error import ApiError

    mine = set(mine)
    report = DuplicateReport()
    for article_id, tasks in project_task_index(client, conn, project_id).items():
        if len(tasks) > 1:
            report.kept[article_id] = tasks[0]["id"]
        for task in tasks[1:]:
            if task["annotated"]:
                report.annotated_duplicates.setdefault(article_id, []).append(task["id"])
                continue
            if task["id"] not in mine and task["age"] < SETTLE_SECONDS:
                report.left_for_their_writer.append(task["id"])
                continue
            try:
                client.tasks.delete(task["id"])
            except ApiError as exc:
                if exc.status_code != 404:  # 404: someone removed it first
                    raise UserError(
                        conn.redact(f"could not delete duplicate task {task['id']} at {conn.url}: {exc.status_code}")
                    ) from None
            report.removed.append(task["id"])
    return report
