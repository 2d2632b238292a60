"""Commands `newsstance agree` and `newsstance adjudicate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsstance.errors import UserError
from newsstance.paths import AGREEMENT_JSON, ANNOTATIONS_JSONL, CONFLICTS_JSONL, GOLD_JSONL, in_project

AnnotationsOpt = Annotated[
    Path | None, typer.Option("--annotations", help=f"Annotation records (default {ANNOTATIONS_JSONL}).")
]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""

    @app.command("agree")
    def agree(
        annotations: AnnotationsOpt = None,
        out: Annotated[Path | None, typer.Option("--out", help=f"Agreement report (default {AGREEMENT_JSON}).")] = None,
    ) -> None:
        """Inter-annotator agreement: stance alpha/kappa per target, entity span F1, mention stance."""
        from newsstance.gold.agree import run_agree
        from newsstance.scheme import load_scheme

        run_agree(annotations or in_project(ANNOTATIONS_JSONL), out or in_project(AGREEMENT_JSON), load_scheme())

    @app.command("adjudicate")
    def adjudicate(
        annotations: AnnotationsOpt = None,
        policy: Annotated[
            str, typer.Option("--policy", help="How items are decided without ground truth: majority or unanimous.")
        ] = "majority",
        min_annotators: Annotated[
            int,
            typer.Option(
                "--min-annotators", help="Articles with fewer annotators (and no ground truth) go to conflicts."
            ),
        ] = 1,
        out: Annotated[Path | None, typer.Option("--out", help=f"Gold records (default {GOLD_JSONL}).")] = None,
        conflicts: Annotated[
            Path | None,
            typer.Option("--conflicts", help=f"Conflicts file shared with the pull (default {CONFLICTS_JSONL})."),
        ] = None,
        articles: Annotated[
            str | None,
            typer.Option(
                "--articles",
                help="Glob of article JSONL files: gold for a missing or changed text becomes a conflict "
                "(default corpus/normalized/articles*.jsonl, when present).",
            ),
        ] = None,
    ) -> None:
        """Gold per article: ground truth wins, else unanimous/majority decisions; the rest to conflicts."""
        from newsstance.gold.adjudicate import POLICIES, run_adjudicate
        from newsstance.scheme import load_scheme

        if policy not in POLICIES:
            raise UserError(f"--policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        run_adjudicate(
            annotations or in_project(ANNOTATIONS_JSONL),
            out or in_project(GOLD_JSONL),
            conflicts or in_project(CONFLICTS_JSONL),
            load_scheme(),
            policy=policy,
            min_annotators=min_annotators,
            articles_glob=articles,
        )

    @app.command("import-annotations")
    def import_annotations_cmd(
        source: Annotated[
            Path,
            typer.Argument(
                help="JSONL ({text, entities: [{start, end, label, stance?}], stances?, annotator?, article_id?, "
                "url?}; offsets into `text`) or a Label Studio JSON export of any project."
            ),
        ],
        out: Annotated[Path | None, typer.Option("--out", help=f"Records (default {ANNOTATIONS_JSONL}).")] = None,
        conflicts: Annotated[
            Path | None, typer.Option("--conflicts", help=f"Default {CONFLICTS_JSONL} (next to --out).")
        ] = None,
        articles: Annotated[
            str | None, typer.Option("--articles", help="Glob of article JSONL files (default the corpus).")
        ] = None,
    ) -> None:
        """Bring annotations made elsewhere onto the corpus: matched by article id, url or text, spans aligned."""
        from newsstance.paths import article_paths
        from newsstance.studio.push import canonical_articles
        from newsstance.studio.reanchor import import_annotations

        if not source.is_file():
            raise UserError(f"not a file: {source}")
        paths = article_paths(articles)
        if not paths:
            raise UserError(f"no article files match {articles or 'corpus/normalized/articles*.jsonl'}")
        out_path = out or in_project(ANNOTATIONS_JSONL)
        conflicts_path = conflicts or out_path.with_name(CONFLICTS_JSONL.name)
        result = import_annotations(source, canonical_articles(paths), out=out_path, conflicts_path=conflicts_path)
        typer.echo(result.summary(out_path, conflicts_path))
