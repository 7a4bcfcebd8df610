"""One round's write: the records that differ, the inferred delta, and orphaned statements.

Each round is at most one SPARQL update, so readers never see half of one. A round mostly
derives again what it had (the last round of an update only checks that a new class
changes nothing more): only the lines that differ are written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyoxigraph as ox

from relmark.reasoning.incremental.records import Records
from relmark.reasoning.rules.provenance import Derivation, derivation_lines, statement_iri
from relmark.vocab import INFERRED_GRAPH, PROVENANCE_GRAPH


def write(
    records: Records,
    old: set[ox.NamedNode],
    new: list[Derivation],
    added: list[ox.Triple],
    removed: list[ox.Triple],
    locations: Mapping[ox.Triple, list[str | None]],
) -> None:
    """One update: what changed in the derivations' records (``old`` replaced by ``new``),
    the inferred triples ``added`` and ``removed``, and the statement nodes nothing points
    to any more; none when nothing changed."""
    lines: set[str] = set()
    for derivation in new:
        lines.update(derivation_lines(derivation, locations))
    stored, used = records.stored_records(old)
    still = _statements(new, locations)  # used again by a new derivation: they stay
    candidates = " ".join(str(s) for s in sorted(used - still, key=str))
    parts = []
    if stored is None:  # a blank node in a record: DELETE DATA cannot name it
        derivations = " ".join(str(d) for d in sorted(old, key=str))
        parts.append(
            f"DELETE {{ GRAPH <{PROVENANCE_GRAPH}> {{ ?d ?p ?o }} }} WHERE {{"
            f" GRAPH <{PROVENANCE_GRAPH}> {{ VALUES ?d {{ {derivations} }} ?d ?p ?o }} }}"
        )
        written = lines
    else:
        gone = stored - lines
        if gone:
            body = "\n".join(sorted(gone))
            parts.append(f"DELETE DATA {{ GRAPH <{PROVENANCE_GRAPH}> {{ {body} }} }}")
        known = {str(s) for s in used}  # their records are stored (an old derivation's)
        written = {line for line in lines - stored if line.split(" ", 1)[0] not in known}
    if removed:
        parts.append(f"DELETE DATA {{ GRAPH <{INFERRED_GRAPH}> {{ {_nt(removed)} }} }}")
    if added:
        parts.append(f"INSERT DATA {{ GRAPH <{INFERRED_GRAPH}> {{ {_nt(added)} }} }}")
    if written:
        body = "\n".join(sorted(written))
        parts.append(f"INSERT DATA {{ GRAPH <{PROVENANCE_GRAPH}> {{ {body} }} }}")
    if candidates:
        # the old derivations' statement nodes that nothing points to any more
        parts.append(
            f"DELETE {{ GRAPH <{PROVENANCE_GRAPH}> {{ ?st ?p ?o }} }} WHERE {{"
            f" GRAPH <{PROVENANCE_GRAPH}> {{ VALUES ?st {{ {candidates} }} ?st ?p ?o"
            f" FILTER NOT EXISTS {{ ?any ?used ?st }} }} }}"
        )
    if parts:
        records.store.update(" ;\n".join(parts), system=True)


def _statements(
    derivations: list[Derivation], locations: Mapping[ox.Triple, list[str | None]]
) -> set[ox.NamedNode]:
    """The statement nodes the derivations' records point to (``derivation_lines``)."""
    found = set()
    for derivation in derivations:
        found |= {statement_iri(c, INFERRED_GRAPH) for c in derivation.conclusions}
        for premise in derivation.premises:
            for graph in locations.get(premise) or [INFERRED_GRAPH]:
                found.add(statement_iri(premise, graph))
    return found


def _nt(triples: Iterable[ox.Triple]) -> str:
    data = ox.serialize(sorted(triples, key=str), format=ox.RdfFormat.N_TRIPLES)
    assert data is not None, "serialize returns the bytes when given no output"
    return data.decode("utf-8")
