"""A live server that schemathesis cannot make fail (5xx): property-based requests to every
operation of ``/api/openapi.json`` over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.server import RelmarkServer

#: schemathesis examples per operation: enough to reach every error path, bounded in time.
EXAMPLES = 12


@pytest.mark.server_backends("workers=1")
def test_schemathesis_finds_no_server_error(relmark_server: RelmarkServer, tmp_path: Path):
    """Property-based requests to every operation (valid and invalid inputs): never a 5xx.

    No token is given, so every write is refused (401) and the shared server's demo data
    stays as the other tests expect it.
    """
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "run",
        f"{relmark_server.url}/api/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,fuzzing",
        "--seed",
        "6",
        "--workers",
        "1",
        "--no-shrink",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
