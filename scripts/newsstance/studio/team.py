"""Running an annotation team: annotators, progress, overlap and task order (`newsstance studio annotators|progress|configure`).

Everything here reads the server live and prints to the operator's terminal only: annotator
e-mails are personal data, so nothing in this module writes a file (a one-time password is
printed once and never stored - Label Studio keeps only its hash).
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from newsstance.errors import UserError
from newsstance.paths import project_root
from newsstance.studio.client import Connection, invite_user
from newsstance.studio.project import require_project

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

# How annotators are served tasks: our names -> Label Studio's `sampling` values.
ORDERS = {
    "sequential": "Sequential sampling",
    "random": "Uniform sampling",
    "uncertainty": "Uncertainty sampling",
}


# --- annotators ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewAnnotator:
    email: str
    password: str | None
    invite_url: str | None

    def __repr__(self) -> str:
        return f"NewAnnotator(email={self.email!r}, password=***)"


def invite_link(conn: Connection) -> str:
    """The organisation's sign-up link (anyone holding it can join; signup without it is off)."""
    import httpx

    with conn.errors("creating an invite link"), httpx.Client(base_url=conn.url, timeout=60) as http:
        response = http.get("/api/invite", headers=_auth_header(conn))
        response.raise_for_status()
        return conn.url + str(response.json()["invite_url"])


def _auth_header(conn: Connection) -> dict[str, str]:
    if conn.kind == "legacy":
        return {"Authorization": f"Token {conn.api_key}"}
    from newsstance.studio.client import _access_token

    return {"Authorization": f"Bearer {_access_token(conn)}"}


def users(client: LabelStudio, conn: Connection) -> list[dict[str, Any]]:
    with conn.errors("listing users"):
        return [u.model_dump() for u in client.users.list()]


def add_annotator(conn: Connection, email: str, *, link_only: bool = False) -> NewAnnotator:
    """Create the account with a fresh one-time password (the annotator changes it after logging in),
    or, with `link_only`, hand back the invite link for them to sign up themselves."""
    email = email.strip()
    if "@" not in email or any(ch.isspace() for ch in email):
        raise UserError(f"{email!r} is not an e-mail address")
    client = conn.client()
    if any(str(u.get("email", "")).lower() == email.lower() for u in users(client, conn)):
        raise UserError(f"{email} already has an account on {conn.url}")
    if link_only:
        return NewAnnotator(email, None, invite_link(conn))
    password = secrets.token_urlsafe(12)
    invite_user(conn, email, password)
    return NewAnnotator(email, password, None)


@dataclass
class AnnotatorRow:
    user_id: int
    email: str
    annotations: int = 0
    skipped: int = 0
    last_annotation: str | None = None


def _export(client: LabelStudio, conn: Connection, project_id: int) -> list[dict[str, Any]]:
    with conn.errors("exporting the project"):
        raw = b"".join(client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True))
    tasks = orjson.loads(raw)
    return tasks if isinstance(tasks, list) else []


def _user_id(completed_by: Any) -> int | None:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return completed_by if isinstance(completed_by, int) else None


def annotator_rows(
    people: list[dict[str, Any]], tasks: list[dict[str, Any]], admin_email: str | None = None
) -> list[AnnotatorRow]:
    """One row per account with its submitted/skipped annotation counts in these tasks."""
    rows = {int(u["id"]): AnnotatorRow(int(u["id"]), str(u.get("email") or "")) for u in people}
    for task in tasks:
        for annotation in task.get("annotations") or []:
            user = _user_id(annotation.get("completed_by"))
            if user is None:
                continue
            row = rows.setdefault(user, AnnotatorRow(user, f"user {user}"))
            if annotation.get("was_cancelled"):
                row.skipped += 1
            else:
                row.annotations += 1
            when = annotation.get("updated_at") or annotation.get("created_at")
            if isinstance(when, str) and (row.last_annotation is None or when > row.last_annotation):
                row.last_annotation = when
    out = [r for r in rows.values() if r.email != admin_email or r.annotations or r.skipped]
    return sorted(out, key=lambda r: (-r.annotations, r.email))


def list_annotators(conn: Connection, project: str | None) -> list[AnnotatorRow]:
    client = conn.client()
    people = users(client, conn)
    tasks = _export(client, conn, int(require_project(client, conn, project)["id"])) if project else []
    admin = conn_admin_email(client, conn)
    return annotator_rows(people, tasks, admin)


def conn_admin_email(client: LabelStudio, conn: Connection) -> str | None:
    with conn.errors("reading the connected user"):
        return str(client.users.whoami().model_dump().get("email") or "") or None


# --- progress ------------------------------------------------------------------------------------


SpanKey = tuple[int, int, str]


def _submitted(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest submitted annotation of each annotator on a task."""
    latest: dict[int, dict[str, Any]] = {}
    for annotation in task.get("annotations") or []:
        user = _user_id(annotation.get("completed_by"))
        if user is None or annotation.get("was_cancelled"):
            continue
        if user not in latest or int(annotation.get("id") or 0) > int(latest[user].get("id") or 0):
            latest[user] = annotation
    return list(latest.values())


def _spans(annotation: dict[str, Any]) -> set[SpanKey]:
    spans = set()
    for result in annotation.get("result") or []:
        value = result.get("value") or {}
        if result.get("type") == "labels" and value.get("labels"):
            spans.add((int(value.get("start", -1)), int(value.get("end", -1)), str(value["labels"][0])))
    return spans


def _document_choices(annotation: dict[str, Any]) -> dict[str, str]:
    return {
        str(result.get("from_name")): str((result.get("value") or {}).get("choices", [""])[0])
        for result in annotation.get("result") or []
        if result.get("type") == "choices" and str(result.get("from_name", "")).startswith("stance_")
    }


@dataclass
class Progress:
    project: str
    overlap: int
    order: str
    tasks: int = 0
    done: int = 0  # tasks with `overlap` submitted annotations
    started: int = 0  # at least one
    annotations: int = 0
    per_annotator: Counter[int] = field(default_factory=Counter)
    span_f1: float | None = None  # pairwise exact-span agreement, micro F1 over task pairs
    span_pairs: int = 0
    stance_agreement: float | None = None  # share of identical document-stance answers
    stance_pairs: int = 0
    conflicts: int | None = None


def compute_progress(project: dict[str, Any], tasks: list[dict[str, Any]], conflicts_path: Path | None) -> Progress:
    overlap = int(project.get("maximum_annotations") or 1)
    sampling = project.get("sampling") or ORDERS["sequential"]
    order = next((name for name, value in ORDERS.items() if value == sampling), str(sampling))
    progress = Progress(str(project.get("title")), overlap, order, tasks=len(tasks))
    matched = spans_a = spans_b = 0
    same_stance = stance_pairs = 0
    for task in tasks:
        submitted = _submitted(task)
        progress.annotations += len(submitted)
        progress.started += bool(submitted)
        progress.done += len(submitted) >= overlap
        for annotation in submitted:
            user = _user_id(annotation.get("completed_by"))
            if user is not None:
                progress.per_annotator[user] += 1
        for a, b in combinations(submitted, 2):
            sa, sb = _spans(a), _spans(b)
            matched, spans_a, spans_b = matched + len(sa & sb), spans_a + len(sa), spans_b + len(sb)
            progress.span_pairs += 1
            ca, cb = _document_choices(a), _document_choices(b)
            for target in ca.keys() & cb.keys():
                stance_pairs += 1
                same_stance += ca[target] == cb[target]
    if progress.span_pairs and spans_a + spans_b:
        progress.span_f1 = 2 * matched / (spans_a + spans_b)
    if stance_pairs:
        progress.stance_agreement, progress.stance_pairs = same_stance / stance_pairs, stance_pairs
    if conflicts_path is not None and conflicts_path.is_file():
        with conflicts_path.open("rb") as handle:
            progress.conflicts = sum(1 for line in handle if line.strip())
    return progress


def project_progress(conn: Connection, project: str, conflicts_path: Path | None = None) -> Progress:
    client = conn.client()
    found = require_project(client, conn, project)
    tasks = _export(client, conn, int(found["id"]))
    path = conflicts_path or project_root() / "annotations" / "conflicts.jsonl"
    return compute_progress(found, tasks, path)


def progress_lines(progress: Progress, names: dict[int, str]) -> list[str]:
    """What `studio progress` prints."""
    share = f" ({progress.done / progress.tasks:.0%})" if progress.tasks else ""
    lines = [
        f"project {progress.project!r}: {progress.done}/{progress.tasks} task(s) done{share} "
        f"(overlap {progress.overlap}, order {progress.order}); {progress.started} started, "
        f"{progress.annotations} annotation(s)",
    ]
    for user, count in progress.per_annotator.most_common():
        lines.append(f"  {names.get(user, f'user {user}')}: {count}")
    if progress.span_f1 is None:
        lines.append("agreement so far: no task has two annotations yet")
    else:
        lines.append(
            f"agreement so far: entity spans F1 {progress.span_f1:.3f} over {progress.span_pairs} task pair(s)"
        )
        if progress.stance_agreement is not None:
            lines.append(
                f"  document stance: {progress.stance_agreement:.1%} identical over {progress.stance_pairs} answer pair(s)"
            )
    if progress.conflicts is None:
        lines.append("conflicts waiting: none recorded (run `newsstance studio pull`)")
    else:
        lines.append(f"conflicts waiting: {progress.conflicts} (send them to review: `newsstance studio review`)")
    return lines


# --- project settings ----------------------------------------------------------------------------


def configure_project(conn: Connection, project: str, *, overlap: int | None, order: str | None) -> dict[str, Any]:
    """Set how many annotators see each task and in which order tasks are served."""
    update: dict[str, Any] = {}
    if overlap is not None:
        if overlap < 1:
            raise UserError("--overlap must be at least 1")
        update.update(maximum_annotations=overlap, overlap_cohort_percentage=100)
    if order is not None:
        if order not in ORDERS:
            raise UserError(f"--order must be one of {', '.join(ORDERS)}, not {order!r}")
        update["sampling"] = ORDERS[order]
    if not update:
        raise UserError("nothing to change: pass --overlap and/or --order")
    client = conn.client()
    found = require_project(client, conn, project)
    if order == "uncertainty" and not found.get("model_version"):
        raise UserError(
            f"project {project!r} has no model version with scored predictions yet; "
            "push with pre-annotations first (`newsstance studio push`)"
        )
    with conn.errors(f"updating project {project!r}"):
        return client.projects.update(int(found["id"]), **update).model_dump()


def user_names(conn: Connection) -> dict[int, str]:
    return {int(u["id"]): str(u.get("email") or u["id"]) for u in users(conn.client(), conn)}
