"""``relmark token create|list|revoke``: manage the server's bearer tokens.

Tokens are managed here, on the machine that holds the store, and not over HTTP: whoever
can write the token file can already read the store's files, so no HTTP endpoint has to be
trusted with minting tokens (Datasette's ``create-token`` works from the secret the same way).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from relmark import tokens
from relmark.settings import Settings


def _path(settings: Settings) -> Path:
    path = tokens.token_path(settings.store, settings.token_file)
    if path is None:
        raise click.UsageError("a remote store has no default token file; set RELMARK_TOKEN_FILE")
    return path


@click.group("token")
def token() -> None:
    """Create, list and revoke bearer tokens (reader, writer, admin)."""


@token.command("create")
@click.option("--role", type=click.Choice(tokens.ROLES), required=True)
@click.option("--name", default=None, help="A unique name (default: ROLE-N).")
@click.pass_obj
def create(settings: Settings, role: str, name: str | None) -> None:
    """Make a token and print it once: only its hash is kept."""
    path = _path(settings)
    try:
        secret, entry = tokens.create(path, role, name)
    except tokens.TokenError as error:
        raise click.ClickException(str(error)) from None
    click.echo(secret)
    click.echo(
        f"{entry.name} ({entry.role}) saved to {path}; the token is not shown again", err=True
    )


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (name, role, created).")
@click.pass_obj
def list_tokens(settings: Settings, as_json: bool) -> None:
    """Every token's name, role and creation time (never the token or its hash)."""
    path = _path(settings)
    try:
        entries = tokens.read_entries(path)
    except tokens.TokenError as error:
        raise click.ClickException(str(error)) from None
    rows: list[dict[str, str | None]] = [
        {"name": e.name, "role": e.role, "created": e.created} for e in entries
    ]
    if settings.token:
        rows.append({"name": tokens.ENV_TOKEN_NAME, "role": "admin", "created": None})
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['role']}\t{row['created'] or '(environment)'}")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke(settings: Settings, name: str) -> None:
    """Remove token NAME: a running server refuses it from its next request."""
    if name == tokens.ENV_TOKEN_NAME:
        raise click.ClickException("RELMARK_TOKEN is not in the file: unset the variable instead")
    try:
        entry = tokens.revoke(_path(settings), name)
    except tokens.TokenError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"revoked {entry.name} ({entry.role})", err=True)
