"""Where the knowledge files live and the namespaces they use.

One place for the paths of ontology/ and queries/ and for the IRIs every module shares,
so no module spells a namespace or a graph name on its own.
"""

from __future__ import annotations

from pathlib import Path

RM = "https://w3id.org/relmark/ontology#"
DEMO = "https://w3id.org/relmark/demo/"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ONTOLOGY_DIR = PROJECT_ROOT / "ontology"
QUERIES_DIR = PROJECT_ROOT / "queries"

#: The files that make up the ontology proper (TBox + SKOS schemes), in load order.
ONTOLOGY_FILES = ("rm.ttl", "thirty-r.ttl")
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
DATA_GRAPH_PREFIX = "urn:relmark:data:"

#: Graphs only relmark itself writes; users may read them but never load into them.
SYSTEM_GRAPHS = frozenset(
    {ONTOLOGY_GRAPH, SHAPES_GRAPH, CONFIG_GRAPH, INFERRED_GRAPH, PROVENANCE_GRAPH, META_GRAPH}
)
