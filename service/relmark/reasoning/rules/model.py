"""What a parsed rule is: its triple patterns, guards, sub-selects and query texts.

Only data lives here, so that the parser, the evaluator, the provenance writer and the
incremental engine can all name a ``Rule`` without importing one another.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

#: A rule's IRI is this prefix and its name (the provenance record names rules by it).
RULE_IRI_PREFIX = "urn:relmark:rule:"

#: Where the engine's own queries take a VALUES row (a comment until then).
VALUES_SLOT = "\n#relmark:values\n"


class RuleError(Exception):
    """A rule file is malformed, or a rule set cannot be applied; names the file and line."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = "" if path is None else f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)


@dataclass(frozen=True)
class Pattern:
    """One triple pattern: each position an RDF term or an ``ox.Variable``."""

    subject: ox.NamedNode | ox.Literal | ox.Variable
    predicate: ox.NamedNode | ox.Variable
    object: ox.NamedNode | ox.Literal | ox.Variable

    @functools.cached_property
    def _positions(self) -> tuple[tuple[str | None, object], ...]:
        """(variable name or None, fixed term) per position: read once per pattern, not
        once per solution (a million-triple run instantiates a million patterns)."""
        return tuple(
            (term.value, None) if isinstance(term, ox.Variable) else (None, term)
            for term in (self.subject, self.predicate, self.object)
        )

    def instantiate(self, row: Mapping[str, object]) -> ox.Triple | None:
        """The triple for one solution, or None where a variable is unbound or misplaced."""
        terms = []
        for name, term in self._positions:
            if name is not None:
                term = row.get(name)
                if term is None:
                    return None
            terms.append(term)
        try:
            return ox.Triple(*terms)
        except TypeError:  # e.g. a literal bound in subject position: CONSTRUCT skips it
            return None


@dataclass(frozen=True)
class SubSelect:
    """A sub-select of a rule: its grouping keys and the patterns it counts over."""

    keys: tuple[str, ...]
    select_sparql: str
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class Guard:
    """A ``FILTER NOT EXISTS`` of a rule: the rule applies where ``ask_sparql`` finds nothing.

    The engine checks guards itself, for batches of solutions with their values bound
    (``evaluate.guard_query``; ``ask_sparql`` for one solution), instead of leaving them in
    the query: pyoxigraph evaluates a NOT EXISTS over the whole store before joining, which
    makes some rules quadratic in the size of the store.
    """

    ask_sparql: str
    patterns: tuple[Pattern, ...]
    variables: tuple[str, ...]
    prologue: str = ""
    body: str = ""  # the group inside NOT EXISTS { … }


@dataclass(frozen=True)
class Rule:
    """One parsed rule file.

    ``select_sparql`` is the rule's WHERE as ``SELECT *``; ``match_sparql`` the same
    without its guards (checked per solution); ``reach_sparql`` finds the resources the
    rule might classify from its triple patterns alone, to know what a change touches.
    """

    name: str
    label: str
    label_it: str
    why: str
    why_it: str
    source: str
    sparql: str
    path: Path
    select_sparql: str
    conclusions: tuple[Pattern, ...]
    premises: tuple[Pattern, ...]
    subselects: tuple[SubSelect, ...] = ()
    focus: str = ""
    guards: tuple[Guard, ...] = ()
    match_sparql: str = ""
    reach_sparql: str = ""
    #: The works of references.ttl the ``# source:`` header cites (``ref:name, …``), as
    #: IRIs; empty for a header that names none.
    references: tuple[str, ...] = ()

    @property
    def iri(self) -> str:
        return RULE_IRI_PREFIX + self.name


def is_variable(term: object) -> bool:
    return isinstance(term, ox.Variable)
