"""The greedy search's state for one rule and one resource, and the queries it asks.

Each condition is tried together with every condition already met, through
``store.query`` with the resource bound as the rule's focus.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyoxigraph as ox

from relmark.reasoning.rules.inputs import NOT_RULE_INPUT
from relmark.reasoning.rules.model import Rule
from relmark.reasoning.whynot.conditions import prologue_of
from relmark.reasoning.whynot.facts import Facts
from relmark.stores.base import selected
from relmark.vocab import INFERRED_GRAPH


class Search:
    """The conditions met so far (``accepted``), the variables they bind (``bound``) and
    those a failed condition left unbound (``failed``), for one rule and one resource."""

    def __init__(self, store: Facts, rule: Rule, iri: str) -> None:
        self.store = store
        self.focus = rule.focus
        self.node = ox.NamedNode(iri)
        self.prologue = prologue_of(rule)
        self.graphs = [None, *(g for g in store.graph_names() if g not in NOT_RULE_INPUT)]
        if INFERRED_GRAPH in store.graph_names():
            self.graphs.append(INFERRED_GRAPH)
        self.accepted: list[str] = []
        self.bound: set[str] = {self.focus}
        self.failed: set[str] = set()

    def _where(self, extra: Iterable[str] = ()) -> str:
        # VALUES … UNDEF puts the focus in scope, so it can be substituted in every query
        return "\n".join([f"VALUES ?{self.focus} {{ UNDEF }}", *self.accepted, *extra])

    def ask(self, extra: Iterable[str]) -> bool:
        query = f"{self.prologue}\nASK {{\n{self._where(extra)}\n}}"
        return bool(
            self.store.query(
                query, default_graph=self.graphs, substitutions={self.focus: self.node}
            )
        )

    def select(self, variables: Sequence[str], extra: Iterable[str] = (), limit: int = 20) -> list:
        names = sorted(set(variables) | {self.focus})
        projection = " ".join(f"?{n}" for n in names)
        query = (
            f"{self.prologue}\nSELECT DISTINCT {projection} WHERE {{\n{self._where(extra)}\n}}"
            f" ORDER BY {projection} LIMIT {limit}"
        )
        solutions = self.store.query(
            query, default_graph=self.graphs, substitutions={self.focus: self.node}
        )
        return [{n: s[n] for n in names if s[n] is not None} for s in selected(solutions)]

    def values(self, variable: str, extra: Iterable[str] = (), limit: int = 20) -> list:
        found = []
        for row in self.select([variable], extra, limit):
            if variable in row and row[variable] not in found:
                found.append(row[variable])
        return found
