"""The ontology as one document, in the RDF formats a machine asks for at its own IRI.

``https://w3id.org/relmark/ontology`` names the whole ontology: rm.ttl, the value lists,
the references and the Italian definitions (``relmark.vocab.ontology_paths``). The HTML
page and this document answer at the same URL (``/ontology``); which one a client gets is
content negotiation over HTML and the RDF formats of ``relmark.formats``. The document is
read from the files, not from the store, so a download is exactly what the repository
holds, and is kept serialised until a file changes.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from relmark.formats import FORMATS, Format
from relmark.vocab import RM, ontology_paths
from relmark.web.serialization import serialize_rdf

#: The ontology's IRI (the namespace without its ``#``).
ONTOLOGY_IRI = RM.rstrip("#")
OWL = "http://www.w3.org/2002/07/owl#"

#: The formats the document is offered in, in the server's order of preference (Turtle
#: first: the format the files are written in).
OFFERED_RDF = tuple(
    fmt
    for wanted in (
        ox.RdfFormat.TURTLE,
        ox.RdfFormat.RDF_XML,
        ox.RdfFormat.JSON_LD,
        ox.RdfFormat.N_TRIPLES,
    )
    for fmt in FORMATS
    if fmt.oxigraph == wanted
)

#: The file extension of each offered format: the download links and ``/ontology.<ext>``.
EXTENSIONS: dict[str, Format] = {
    ext: fmt for fmt in OFFERED_RDF for ext in fmt.names if ext in ("ttl", "rdf", "jsonld", "nt")
}


@dataclass(frozen=True, eq=False)
class OntologyDocument:
    """The merged ontology files: their triples, version and a digest for ETags.

    Compared by identity: one object per state of the files (``_read`` keeps it), so the
    serialisations memoised per document never hash its triples.
    """

    triples: tuple[ox.Triple, ...]
    version: str
    version_iri: str
    digest: str

    def serialized(self, fmt: Format) -> bytes:
        """The document in one format (memoised per document and format)."""
        return _serialized(self, fmt)

    def filename(self, fmt: Format) -> str:
        """``relmark-0.2.0.ttl``: the name a download is saved under."""
        extension = next(ext for ext, f in EXTENSIONS.items() if f is fmt)
        return f"relmark-{self.version}.{extension}"


def ontology_document(ontology_dir: Path) -> OntologyDocument:
    """The document of the ontology files in ``ontology_dir``, re-read when one changes."""
    paths = ontology_paths(ontology_dir)
    stamps = tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size) for path in paths)
    return _read(stamps)


@functools.lru_cache(maxsize=4)
def _read(stamps: tuple[tuple[str, int, int], ...]) -> OntologyDocument:
    triples: set[ox.Triple] = set()
    digest = hashlib.sha256()
    for name, _, _ in stamps:
        data = Path(name).read_bytes()
        digest.update(data)
        for quad in ox.parse(data, format=ox.RdfFormat.TURTLE, base_iri=RM):
            triples.add(quad.triple)
    version_iri, version = "", ""
    ontology = ox.NamedNode(ONTOLOGY_IRI)
    for triple in triples:
        if triple.subject != ontology or isinstance(triple.object, ox.Triple):
            continue
        if triple.predicate.value == OWL + "versionIRI":
            version_iri = triple.object.value
        if triple.predicate.value == OWL + "versionInfo":
            version = triple.object.value
    ordered = tuple(sorted(triples, key=str))  # the same bytes for the same files
    return OntologyDocument(ordered, version, version_iri, digest.hexdigest()[:32])


@functools.lru_cache(maxsize=16)
def _serialized(document: OntologyDocument, fmt: Format) -> bytes:
    return serialize_rdf(document.triples, fmt)


def version_path(document: OntologyDocument) -> str | None:
    """The path of the version IRI under the ontology IRI (``0.2.0``), if it has one."""
    prefix = ONTOLOGY_IRI + "/"
    if document.version_iri.startswith(prefix):
        return document.version_iri[len(prefix) :]
    return None
