"""``pip install .`` into a fresh virtual environment serves without the checkout.

The package is built from a copy of the project (the checkout gets no ``build/``), installed
non-editable into a new venv, and run from a directory that is not the project: the
ontology, the named questions and the pages' npm files must all come from the installed
package. The dependencies are not downloaded again (``--no-deps``): the new venv sees this
test environment's site-packages through a ``.pth`` file, as ``--system-site-packages``
would show a system's; only the build backend comes from the package index, as any
``pip install .`` gets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.paths import ROOT
from support.server import free_port, wait_until_ready

from relmark.vocab import demo_paths

#: What the build reads; node_modules/ comes as a link, as the package's vendor link needs.
PROJECT_FILES = ("pyproject.toml", "README.md", "service", "ontology", "queries")
VENDOR_FILE = "cytoscape/dist/cytoscape.min.js"


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command; fail with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return result.stdout


def _clean_env() -> dict[str, str]:
    """This environment without anything that would lead the installed relmark back to the
    checkout (PYTHONPATH, RELMARK_* settings)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RELMARK_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin/`` of a fresh venv with relmark installed from a copy of the project."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in PROJECT_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(
                path,
                source / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(path, source / name)
    if (ROOT / "node_modules").is_dir():
        (source / "node_modules").symlink_to((ROOT / "node_modules").resolve())
    venv = base / "venv"
    env = _clean_env()
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            base,
            env,
        ).strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-environment.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    _run([*pip, str(source)], base, env)
    yield venv / "bin"


def test_the_installed_package_reads_its_own_files(installed: Path, tmp_path: Path) -> None:
    where = _run(
        [
            str(installed / "python"),
            "-c",
            "import relmark, relmark.vocab as v, relmark.settings as s; "
            "print(relmark.__file__, v.ONTOLOGY_DIR, v.QUERIES_DIR, s.Settings().vendor_dir, "
            "sep='\\n')",
        ],
        tmp_path,
        _clean_env(),
    ).split()
    package = Path(where[0]).parent
    assert package.is_relative_to(installed.parent), where
    for directory in where[1:]:  # package data, not the checkout's
        assert Path(directory).is_relative_to(package), where
        assert not Path(directory).is_relative_to(ROOT), where
    assert (Path(where[1]) / "shapes.ttl").is_file()
    assert sorted(p.name for p in Path(where[2]).glob("*.rq")) == sorted(
        p.name for p in (ROOT / "queries").glob("*.rq")
    )


def test_load_and_serve_from_another_directory(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = tmp_path / "store"
    env = _clean_env()
    relmark = str(installed / "relmark")
    _run([relmark, "--store", str(store), "load", *map(str, demo_paths())], elsewhere, env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [relmark, "--store", str(store), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=elsewhere,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, url + "/healthz", log, "the installed relmark serve", 60)
        answer = requests.get(
            url + "/sparql",
            params={
                "query": "SELECT (COUNT(*) AS ?n) { GRAPH <urn:relmark:data:bank> { ?s ?p ?o } }"
            },
            headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert int(answer.json()["results"]["bindings"][0]["n"]["value"]) > 0
        home = requests.get(url + "/", headers={"Accept": "text/html"}, timeout=30)
        assert home.status_code == 200 and "<title>" in home.text
        assert home.headers["Content-Type"].startswith("text/html")
        questions = requests.get(url + "/api/queries", timeout=30).json()["queries"]
        assert {q["name"] for q in questions} == {p.stem for p in (ROOT / "queries").glob("*.rq")}
        if (ROOT / "node_modules" / VENDOR_FILE).is_file():  # copied in at build time
            script = requests.get(f"{url}/vendor/{VENDOR_FILE}", timeout=30)
            assert script.status_code == 200 and "cytoscape" in script.text[:2000]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
