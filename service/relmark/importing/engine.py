"""The RML engine: morph-kgc, run in its own virtual environment as a subprocess.

morph-kgc pins ``pyoxigraph<0.4`` and ``rdflib<7.3``, which relmark cannot share (it needs
pyoxigraph 0.5), so ``make install`` gives it ``.venv-rml/`` and relmark talks to it through
files only: a YARRRML mapping and a config in, N-Triples out. ``RELMARK_RML_PYTHON`` names
another interpreter that has morph-kgc installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The interpreter ``make install`` sets up with morph-kgc: ``.venv-rml`` beside the virtual
#: environment relmark runs in (``.venv``), so relmark's own environment never holds the
#: engine's pinned pyoxigraph and rdflib.
DEFAULT_RML_PYTHON = Path(sys.prefix).parent / ".venv-rml" / "bin" / "python"


class EngineError(Exception):
    """The RML engine is missing or failed; ``detail`` carries its own last words."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def rml_python(explicit: Path | str | None = None) -> Path:
    """The interpreter that runs morph-kgc: ``explicit``, else ``RELMARK_RML_PYTHON``, else
    ``.venv-rml/bin/python``. Raises ``EngineError`` naming ``make install`` when absent."""
    chosen = explicit or os.environ.get("RELMARK_RML_PYTHON") or DEFAULT_RML_PYTHON
    path = Path(chosen)
    if not path.is_file():
        raise EngineError(
            f"the RML engine (morph-kgc) is not installed at {path}: run `make install` "
            "(it creates .venv-rml/), or set RELMARK_RML_PYTHON to a Python that has morph-kgc"
        )
    return path


def run_engine(
    mapping: Path, output: Path, *, python: Path | str | None = None, timeout: float = 3600
) -> None:
    """Materialise ``mapping`` (YARRRML whose sources are local CSV files) into ``output``
    as N-Triples. Empty cells produce no triple (``na_values`` is the empty string only, so
    a name such as "NA" or "null" stays a value)."""
    interpreter = rml_python(python)
    config = output.with_suffix(".ini")
    config.write_text(
        "[CONFIGURATION]\n"
        f"output_file={output}\n"
        "output_format=N-TRIPLES\n"
        "na_values=\n"
        "number_of_processes=1\n"
        "logging_level=WARNING\n"
        "\n[DataSource1]\n"
        f"mappings={mapping}\n",
        encoding="utf-8",
    )
    try:
        done = subprocess.run(
            [str(interpreter), "-m", "morph_kgc", str(config)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=output.parent,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise EngineError(f"the RML engine took more than {timeout:.0f} s") from error
    if done.returncode != 0 or not output.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise EngineError(f"the RML engine failed (exit code {done.returncode})", tail)
