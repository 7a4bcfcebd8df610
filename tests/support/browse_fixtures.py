"""The server behind the browser and Italian pages tests: ``relmark serve`` with the demo data.

A pytest plugin (``pytest_plugins = ("support.browse_fixtures",)`` in
``tests/e2e/test_browser.py`` and ``tests/e2e/test_italian.py``). It runs a single worker,
which is enough for pages and quicker to start.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.server import RelmarkServer, put_demo_data, running_relmark


@pytest.fixture(scope="session")
def browse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelmarkServer]:
    """``relmark serve`` (one worker) with the demo data PUT through the Graph Store."""
    home = tmp_path_factory.mktemp("relmark-browse")
    with running_relmark(home, workers=1) as server:
        put_demo_data(server)
        yield server
