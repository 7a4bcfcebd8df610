"""What the HTML pages' tests share: the demo IRIs they look at, the browser's launch
settings, and /sparql as the oracle the pages are compared with.

The server fixture is in ``browse_fixtures.py`` (a plugin of ``tests/e2e/test_browser.py``).
"""

from __future__ import annotations

from pathlib import Path

import requests

from relmark.vocab import DEMO, RM
from support.paths import ROOT
from support.server import RelmarkServer

SCREENSHOTS = ROOT / "tests" / "output" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BANK = DEMO + "banca-lariana"
ADVOCATE_RELATIONSHIP = DEMO + "cr-laura-colombo"
ADVOCATE = RM + "Advocate"


def sparql_select(server: RelmarkServer, query: str) -> list[dict[str, str]]:
    """Rows of a SELECT through /sparql: the oracle the pages are compared with."""
    prefixes = f"PREFIX rm: <{RM}>\nPREFIX demo: <{DEMO}>\n"
    response = requests.post(
        server.sparql,
        data={"query": prefixes + query},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [
        {name: cell["value"] for name, cell in row.items()}
        for row in response.json()["results"]["bindings"]
    ]
