"""The facts a why-not question reads: the store itself, or each fact once when graphs share."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Protocol

import pyoxigraph as ox

from relmark.reasoning.rules.inputs import (
    SHARED_FACTS,
    distinct_workspace,
    rule_inputs,
    shares_facts,
)
from relmark.stores.base import QueryResult, Store, Term
from relmark.vocab import INFERRED_GRAPH


class Facts(Protocol):
    """What a why-not question reads: a ``Store``, or a ``DistinctFacts``."""

    def graph_names(self) -> list[str]: ...

    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult: ...


class DistinctFacts:
    """The rule inputs with each fact once, and the inferences, for the evaluator's queries.

    Over the store's graphs a condition of k patterns about facts stated in N graphs finds
    N^k solutions. Used only while the store's graphs share a fact
    (``rules.inputs.SHARED_FACTS``); a copy of the inputs per question is the price then.
    """

    def __init__(self, work: ox.Store) -> None:
        self.work = work

    @classmethod
    def of(cls, store: Store) -> Facts:
        shared = SHARED_FACTS.get(store)
        if shared is None:
            shared = shares_facts(store, rule_inputs(store))
            with contextlib.suppress(TypeError):
                SHARED_FACTS[store] = shared
        return cls(distinct_workspace(store, with_inferred=True)) if shared else store

    def graph_names(self) -> list[str]:
        return [INFERRED_GRAPH]  # the facts are the default graph: the evaluator's [None, …]

    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult:
        """Every query over the facts and the inferences (all the copy holds)."""
        bound = {ox.Variable(k): v for k, v in (substitutions or {}).items()}
        return self.work.query(sparql, use_default_graph_as_union=True, substitutions=bound)
