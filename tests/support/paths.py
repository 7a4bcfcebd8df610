"""Where the project and the installed ``relmark`` are, for tests in any sub-folder."""

from __future__ import annotations

import sys
from pathlib import Path

#: The repository's root (tests/support/paths.py is two levels below it).
ROOT = Path(__file__).resolve().parents[2]
#: The virtual environment's bin/ that runs these tests.
VENV_BIN = Path(sys.executable).parent
#: The ``relmark`` command installed next to this Python.
RELMARK = VENV_BIN / "relmark"
