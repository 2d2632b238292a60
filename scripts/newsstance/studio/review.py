"""Push adjudication conflicts back to Label Studio as review tasks.

A reviewer sees every competing annotation of an article as a prediction next to the
text and submits the decision as a ground-truth annotation in a separate review project
(`<title> review`); pulling that project and re-running `adjudicate` settles the conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from newsstance.errors import UserError
from newsstance.gold.adjudicate import review_tasks
from newsstance.paths import ANNOTATIONS_JSONL, CONFLICTS_JSONL, article_paths, in_project
from newsstance.records import read_jsonl
from newsstance.scheme import load_scheme
from newsstance.studio.client import Connection
from newsstance.studio.project import ensure_project
from newsstance.studio.push import server_tasks, task_problems
from newsstance.studio.writer import project_lock, remove_duplicate_tasks

if TYPE_CHECKING:
    from label_studio_sdk.types.import_api_request import ImportApiRequest


@dataclass
class ReviewResult:
    project_id: int
    project: str
    pushed: int = 0
    already_present: int = 0
    changed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        line = (
            f"review project {self.project!r} (id {self.project_id}): {self.pushed} review task(s) pushed, "
            f"{self.already_present} already there"
        )
        if self.changed:
            line += f"; {len(self.changed)} article(s) changed text since their review task: {', '.join(self.changed)}"
        return line


def _read_optional(path: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(path)) if path.is_file() else []


def build_review_tasks(conflicts_path: Path, annotations_path: Path, articles_glob: str | None) -> list[dict]:
    """Review tasks for every conflicted article, with the task fields push validates."""
    if not annotations_path.is_file():
        raise UserError(f"annotations not found: {annotations_path} (run `newsstance studio pull`)")
    articles = {a["id"]: a for path in article_paths(articles_glob) for a in read_jsonl(path)}
    scheme = load_scheme()
    tasks = review_tasks(_read_optional(conflicts_path), read_jsonl(annotations_path), articles, scheme)
    for task in tasks:
        article = articles[task["data"]["article_id"]]
        task["data"].setdefault("source", article.get("source"))
        task["data"].setdefault("url", article.get("url"))
        problems = task_problems(task, scheme)
        if problems:
            raise UserError(f"review task for {task['data']['article_id']} is invalid: {'; '.join(problems[:3])}")
    return tasks


def push_review(
    conn: Connection,
    *,
    project: str,
    conflicts_path: Path | None = None,
    annotations_path: Path | None = None,
    articles_glob: str | None = None,
) -> ReviewResult:
    """Create/update the review project and add a task per conflicted article not already there
    (under the project's write lock; duplicates from a concurrent writer elsewhere are removed)."""
    with project_lock(conn.url, project):
        return _push_review_unlocked(
            conn,
            project=project,
            conflicts_path=conflicts_path,
            annotations_path=annotations_path,
            articles_glob=articles_glob,
        )


def _push_review_unlocked(
    conn: Connection,
    *,
    project: str,
    conflicts_path: Path | None,
    annotations_path: Path | None,
    articles_glob: str | None,
) -> ReviewResult:
    conflicts_path = conflicts_path or in_project(CONFLICTS_JSONL)
    annotations_path = annotations_path or in_project(ANNOTATIONS_JSONL)
    tasks = build_review_tasks(conflicts_path, annotations_path, articles_glob)
    client = conn.client()
    sync = ensure_project(client, conn, project, load_scheme(), overlap=1)
    project_id = int(sync.project["id"])
    result = ReviewResult(project_id, project)
    present = server_tasks(client, conn, project_id) if not sync.created else {}
    new = []
    for task in tasks:
        known = present.get(task["data"]["article_id"])
        if known is None:
            new.append(task)
        elif known["text_sha256"] != task["data"]["text_sha256"]:
            result.changed.append(task["data"]["article_id"])
        else:
            result.already_present += 1
    if new:
        with conn.errors(f"importing review tasks into {project!r}"):
            # The SDK accepts plain task dicts (it serialises them as they are); its type says models.
            response = client.projects.import_tasks(
                id=project_id, request=cast("list[ImportApiRequest]", new), return_task_ids=True
            )
        mine = [int(t) for t in getattr(response, "task_ids", None) or []]
        removed = remove_duplicate_tasks(client, conn, project_id, mine=mine).removed
        result.already_present += len(removed)
        result.pushed = len(new) - len(removed)
    return result
