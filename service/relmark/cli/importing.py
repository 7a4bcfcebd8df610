"""``relmark import SOURCE… --mapping M.yml``: spreadsheets and CRM exports into the store.

Exit codes: 0 imported (or, with --dry-run, would import); 1 the data has errors (each one
printed by file, row and column; nothing written); 2 bad input (unreadable file or
mapping, a required column missing); 3 the RML engine is missing or failed.
"""

from __future__ import annotations

import json
import sys
import time

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from relmark import importing
from relmark.settings import Settings
from relmark.stores import open_store
from relmark.stores.base import StoreError

err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int, detail: str = "") -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    if detail:
        err.print(detail, highlight=False, markup=False)
    sys.exit(code)


class _Bar:
    """A rich bar (rows, rows/s) that shows itself once the import has taken a second."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            console=err,
            transient=True,
        )
        self.started = time.perf_counter()
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        if not self.progress.live.is_started and elapsed > 1.0:
            self.progress.start()
        labels = {
            "read": "checking rows",
            "map": "mapping (RML)",
            "validate": "validating",
            "write": "writing (bytes)",
        }
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(
                labels.get(stage, stage), rate="", total=total or None
            )
        task = self.tasks[stage]
        rate = f"{done / elapsed:,.0f} rows/s" if stage == "read" and elapsed else ""
        self.progress.update(task, completed=done, total=total or None, rate=rate)

    def stop(self) -> None:
        self.progress.stop()


@click.command("import")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--mapping",
    "mapping_name",
    required=True,
    help="A YARRRML file, or a ready mapping by name (contacts, accounts, …).",
)
@click.option("--graph", help="Import into this graph (name or IRI); default: the mapping's.")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@click.option("--report", type=click.Choice(["text", "json"]), default="text")
@click.option("--lang", default="en", show_default=True, help="Language of the messages (en, it).")
@click.pass_obj
def import_command(
    settings: Settings,
    sources: tuple[str, ...],
    mapping_name: str,
    graph: str | None,
    dry_run: bool,
    report: str,
    lang: str,
) -> None:
    """Import CSV or Excel files through a mapping, all or nothing.

    Re-importing the same export replaces what it imported before (its graph), never
    duplicates it. Errors are reported by file, row and column.
    """
    try:
        mapping = importing.load_mapping(
            importing.find_mapping(mapping_name, settings.ontology_dir)
        )
    except importing.MappingError as error:
        _fail(error.message, 2)
        return
    try:
        store = open_store(settings.store)
    except StoreError as error:
        _fail(str(error), 1)
        return
    bar = _Bar()
    try:
        plan = importing.plan_import(
            list(sources),
            mapping,
            store,
            graph=graph,
            lang=lang,
            ontology_dir=settings.ontology_dir,
            progress=bar,
        )
        summary = None
        if plan.ok and not dry_run:
            summary = importing.apply_import(
                plan, store, revalidate=False, ontology_dir=settings.ontology_dir, progress=bar
            )
    except importing.ImportInputError as error:
        bar.stop()
        _fail(error.message, 3 if error.engine else 2, error.detail)
        return
    finally:
        bar.stop()
        store.close()
    if report == "json":
        document = plan.to_json()
        document["written"] = summary is not None
        if summary is not None:  # the write and the inference refresh
            document["seconds"]["write"] = round(summary.seconds, 3)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif plan.problems:
        err.print(importing.problems_text(plan.problems), highlight=False, markup=False)
    if not plan.ok:
        code = 2 if plan.bad_input else 1
        _fail(f"{len(plan.errors)} error(s) in the data; nothing was imported", code)
    if summary is not None:
        err.print(summary.text, highlight=False)
    else:
        err.print(
            f"dry run: {plan.rows:,} rows would become {plan.triples:,} triples in "
            f"<{plan.graph}>; nothing was written",
            highlight=False,
        )
