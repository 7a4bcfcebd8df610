"""The installed ``relmark`` command run as a user runs it: its own process, output captured."""

from __future__ import annotations

import os
import subprocess

from support.paths import RELMARK


def run_relmark(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``relmark ARGS…`` with ``env`` over this environment; never raises on a failure exit."""
    return subprocess.run(
        [str(RELMARK), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
