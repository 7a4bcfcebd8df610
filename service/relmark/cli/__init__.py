"""The ``relmark`` command line: serve, load, import, validate, query, dump, restore, infer, check.

Exit codes: 0 success, 1 a store or runtime error, 2 invalid input (parse error, SHACL
violation, bad query). Errors go to stderr as one readable message naming what and where.

This module is the command group and its options; each area's commands live in their own
module (``load``, ``query``, ``reason``, ``serve``, ``tokens``) and are imported when the
command runs or help lists them (click's lazy subcommands), so ``relmark query`` does not
pay for importing the web server or the OWL reasoner.
"""

from __future__ import annotations

import importlib

import click

from relmark.cli.common import fail
from relmark.settings import Settings
from relmark.stores.base import StoreError

#: Each command and the ``module:attribute`` that defines it.
COMMANDS = {
    "serve": "relmark.cli.serve:serve",
    "load": "relmark.cli.load:load",
    "demo": "relmark.cli.load:demo",
    "validate": "relmark.cli.load:validate",
    "dump": "relmark.cli.load:dump",
    "restore": "relmark.cli.load:restore",
    "query": "relmark.cli.query:query",
    "classify": "relmark.cli.reason:classify",
    "explain": "relmark.cli.reason:explain",
    "infer": "relmark.cli.reason:infer",
    "check": "relmark.cli.reason:check",
    "token": "relmark.cli.tokens:token",
    "import": "relmark.cli.importing:import_command",
    "forget": "relmark.cli.history:forget_command",
    "history": "relmark.cli.history:history_command",
}


class _Commands(click.Group):
    """The commands of ``COMMANDS``, loaded on first use.

    A store failure no command handled itself (a remote engine gone mid-command, say)
    still ends in one readable line and exit code 1, never a traceback.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), target
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreError as error:
            fail(str(error))


@click.group(cls=_Commands)
@click.option("--store", envvar="RELMARK_STORE", help="Store directory (default ./data/store).")
@click.version_option(package_name="relmark")
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """relmark: a knowledge-graph service for relationship marketing."""
    try:
        ctx.obj = Settings.from_env() if store is None else Settings.from_env(store=store)
    except ValueError as error:  # a RELMARK_* variable that does not read (exit code 1)
        raise click.ClickException(f"bad setting: {error}") from None


if __name__ == "__main__":
    main()
