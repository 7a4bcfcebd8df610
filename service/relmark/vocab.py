"""Where the knowledge files live and the namespaces they use.

One place for the paths of ontology/ and queries/ and for the IRIs every module shares,
so no module spells a namespace or a graph name on its own.

ontology/ and queries/ stay at the top of the repository, where their authors edit them;
``relmark/resources/`` holds a symlink to each, which the build follows, so an installed
relmark carries copies of both as package data and a checkout reads the files themselves.
The pages' npm files come the same way through ``relmark/web/vendor`` (a symlink to
node_modules/, copied at build time, never committed).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

RM = "https://w3id.org/relmark/ontology#"
DEMO = "https://w3id.org/relmark/demo/"

#: relmark runs from files on disk (not a zip), so its package data has a real path.
_PACKAGE = Path(str(files("relmark")))
ONTOLOGY_DIR = (_PACKAGE / "resources" / "ontology").resolve()
QUERIES_DIR = (_PACKAGE / "resources" / "queries").resolve()
#: The npm files the pages may load (``RELMARK_VENDOR_DIR`` points elsewhere).
VENDOR_DIR = (_PACKAGE / "web" / "vendor").resolve()

#: The files that make up the ontology proper (TBox + SKOS schemes), in load order.
ONTOLOGY_FILES = ("rm.ttl", "thirty-r.ttl", "references.ttl", "rm-it.ttl")
SHAPES_FILE = "shapes.ttl"
CONFIG_FILE = "config.ttl"


def ontology_paths(ontology_dir: Path = ONTOLOGY_DIR) -> list[Path]:
    """The ontology's Turtle files, so callers never list them by hand."""
    return [ontology_dir / name for name in ONTOLOGY_FILES]


def demo_paths(ontology_dir: Path = ONTOLOGY_DIR) -> list[Path]:
    """The demo data files, in a stable order."""
    return sorted((ontology_dir / "demo").glob("*.ttl"))


#: The named-graph layout: relmark's own graphs, and where loaded data goes.
ONTOLOGY_GRAPH = "urn:relmark:ontology"
SHAPES_GRAPH = "urn:relmark:shapes"
CONFIG_GRAPH = "urn:relmark:config"
INFERRED_GRAPH = "urn:relmark:inferred"
PROVENANCE_GRAPH = "urn:relmark:provenance"
META_GRAPH = "urn:relmark:meta"
#: the classification history: one event per change of an inferred membership
HISTORY_GRAPH = "urn:relmark:history"
DATA_GRAPH_PREFIX = "urn:relmark:data:"

#: Graphs only relmark itself writes; users may read them but never load into them.
SYSTEM_GRAPHS = frozenset(
    {
        ONTOLOGY_GRAPH,
        SHAPES_GRAPH,
        CONFIG_GRAPH,
        INFERRED_GRAPH,
        PROVENANCE_GRAPH,
        META_GRAPH,
        HISTORY_GRAPH,
    }
)

#: The works the ontology and the rules cite (ontology/references.ttl, prefix ``ref:``).
REFERENCES = "https://w3id.org/relmark/references#"
