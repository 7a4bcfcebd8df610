"""The remote back end: the ``Store`` protocol over SPARQL 1.1 Protocol, Update and Graph Store.

``RELMARK_STORE=sparql+http://host:port/path`` puts relmark in front of an existing SPARQL
engine. Only the three W3C protocols are spoken (``transport``), so any engine works; what
differs between engines is kept in one place, ``dialects.Engine`` (detected from the
``Server`` header, or set with ``RELMARK_REMOTE_ENGINE``).

Loads are all-or-nothing: parsed locally first, written into staging graphs through the
Graph Store Protocol, then moved into place with one update request (``MOVE``), the
staging graphs dropped whatever happens. The store records what relmark's own writes
changed (``ChangeRecord``, as the embedded store does), so the inferences follow them
incrementally; a mark in the meta graph says a data write still awaits its refresh.
An unreachable engine raises ``RemoteUnavailable``, which the HTTP layer answers with 503
naming the back end.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO
from urllib.parse import urlencode, urlsplit, urlunsplit

import pyoxigraph as ox

from relmark.sparql.inspect import may_write_any_graph
from relmark.sparql.lexer import query_form
from relmark.sparql.rewrite import Unportable, uses_lateral, without_lateral
from relmark.stores.base import (
    CHANGE_LIMIT,
    STAGING_PREFIX,
    BulkPart,
    ChangeRecord,
    Changes,
    QueryResult,
    RemoteError,
    RemoteUnavailable,
    StoreError,
    Term,
    is_system_graph,
    selected,
    serialized,
)
from relmark.stores.embedded import EmbeddedStore, update_block
from relmark.stores.remote.dialects import (
    BOOLEAN_TYPE,
    EMULATED_DEFAULT_GRAPH,
    ENGINES,
    LATERAL_PROBE,
    N_TRIPLES,
    RESULTS_JSON,
    RESULTS_TSV,
    SPARQL_QUERY,
    Engine,
    bind_values,
    canonical_booleans,
    first_lines,
    looks_like_syntax,
    raise_local_syntax_error,
    read_results,
    silent_drops,
    spelled_graphs,
    without_from,
)
from relmark.stores.remote.lookup_cache import LookupCache
from relmark.stores.remote.transport import RemoteConfig, Reply, Transport
from relmark.vocab import INFERRED_GRAPH, META_GRAPH, SYSTEM_GRAPHS

#: Triples per Graph Store request when staging a load (keeps request bodies moderate).
CHUNK_TRIPLES = 100_000
#: How long the list of graphs is trusted between relmark's own writes.
GRAPHS_TTL = 2.0
#: In the meta graph while a data write has not been followed by its inference refresh.
STALE_MARK = f"<{INFERRED_GRAPH}> <urn:relmark:meta:inferencesStale> true"
#: Dataset parameters up to this many characters go in the URL of a direct POST.
DIRECT_POST_PARAMETERS = 2000


def _sibling(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class RemoteStore:
    """relmark's store on a remote SPARQL 1.1 engine (query + update + Graph Store)."""

    def __init__(self, config: RemoteConfig, generation: Callable[[], int] | None = None) -> None:
        """``generation`` counts writes applied elsewhere (a serving worker's: the writer
        process's): when it moves, what this store kept from the engine is dropped."""
        self.config = config
        # what /healthz and messages name (a remote store has no ``path``: nothing of it
        # is on this machine's disk)
        self.location = "sparql+" + config.query_url
        self.transport = Transport(config, lambda: self.backend)
        self._graphs: tuple[float, list[str]] | None = None
        self._count: tuple[float, int] | None = None
        self._write_lock = threading.Lock()
        self._engine_name: str | None = None  # (unknown while it is being detected)
        self.engine = self._detect(config.engine)
        self._engine_name = self.engine.name
        self._lateral = self.engine.lateral
        self.update_url = config.update_url or self._default_update_url()
        self.gsp_url = config.gsp_url or self._default_gsp_url()
        self._record = ChangeRecord()
        self._data_writes = 0
        self._marked: bool | None = None  # whether the meta graph holds STALE_MARK
        self._writes_sent = 0
        self._elsewhere = generation
        self._seen = generation() if generation is not None else 0
        writes = generation if generation is not None else (lambda: self._writes_sent)
        # labels and class checks already looked up (lookup_cache)
        self.label_cache: LookupCache[dict[str, str]] = LookupCache(writes, config.lookup_ttl)
        self.check_cache: LookupCache[bool] = LookupCache(writes, config.lookup_ttl)

    # --- set-up -------------------------------------------------------------------------
    def _detect(self, wanted: str | None) -> Engine:
        """The engine named in the settings, else the one the ``Server`` header names."""
        if wanted:
            try:
                return ENGINES[wanted.lower()]
            except KeyError:
                known = ", ".join(sorted(ENGINES))
                raise StoreError(f"unknown remote engine {wanted!r}; use one of {known}") from None
        response = self.transport.read("GET", self.config.query_url, params={"query": "ASK {}"})
        server = response.headers.get("Server", "").lower()
        for name in ("oxigraph", "virtuoso"):
            if name in server:
                return ENGINES[name]
        return ENGINES["generic"]

    def _default_update_url(self) -> str:
        url = self.config.query_url
        if self.engine.name == "oxigraph" and url.endswith("/query"):
            return url[: -len("/query")] + "/update"
        return url

    def _default_gsp_url(self) -> str:
        url = self.config.query_url
        if self.engine.name == "oxigraph":
            return _sibling(url, "/store")
        if self.engine.name == "virtuoso":
            return _sibling(url, "/sparql-graph-crud")
        return url

    @property
    def backend(self) -> str:
        """The engine and where it is, as error messages name it."""
        return f"{self._engine_name or 'SPARQL server'} at {self.config.query_url}"

    def describe(self) -> dict[str, str]:
        """The engine and the query URL (what /healthz shows an admin)."""
        return {"engine": self.engine.name, "query": self.config.query_url}

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ---------------------------------------------------------------------------
    # --- HTTP ---------------------------------------------------------------------------
    def deadline(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """Reads on this thread, inside the block, end ``seconds`` from now at the latest
        (``Transport.deadline``)."""
        return self.transport.deadline(seconds)

    def _read(self, method: str, url: str, **request: object) -> Reply:
        return self.transport.read(method, url, **request)

    def _write(self, method: str, url: str, **request: object) -> Reply:
        """A write (never retried); the caller keeps the cached graph list true."""
        try:
            return self.transport.write(method, url, **request)
        finally:  # (also when it failed: it may have been done in part)
            self._count = None
            self._writes_sent += 1  # what the lookup caches kept may be out of date

    def _check(self, response: Reply, what: str, text: str | None = None) -> None:
        """Raise for an error response: 400 is the caller's syntax, the rest the engine's."""
        if response.ok:
            return
        body = response.text.strip()
        if response.status_code in (401, 403):
            raise RemoteError(
                f"the SPARQL server ({self.backend}) refused the {what} "
                f"({response.status_code}): check RELMARK_REMOTE_USER/PASSWORD/BEARER",
                self.backend,
            )
        if response.status_code == 400 or looks_like_syntax(body):
            if what == "query" and text is not None:
                raise_local_syntax_error(text)
            raise SyntaxError(f"the SPARQL server rejected the {what}: {first_lines(body)}")
        if response.status_code in (502, 503, 504):
            raise RemoteUnavailable(
                f"the SPARQL server ({self.backend}) is unavailable ({response.status_code})",
                self.backend,
            )
        raise RemoteError(
            f"the SPARQL server ({self.backend}) failed the {what} "
            f"({response.status_code}): {first_lines(body)}",
            self.backend,
        )

    # --- datasets -----------------------------------------------------------------------
    def engine_graph(self, graph: str | None) -> str | None:
        """The engine's graph standing for one of relmark's (None: the default graph, which
        is the engine's own default graph, or ``EMULATED_DEFAULT_GRAPH`` on Virtuoso)."""
        if graph is None and not self.engine.native_default_graph:
            return EMULATED_DEFAULT_GRAPH
        return graph

    def _visible(self, graph: str) -> bool:
        return not graph.startswith((*self.engine.hidden_prefixes, STAGING_PREFIX)) and (
            graph != EMULATED_DEFAULT_GRAPH
        )

    def _dataset(
        self,
        default_graph: list[str | None] | None,
        named_graphs: list[str] | None,
        sparql: str = "",
    ) -> list[tuple[str, str]]:
        """Protocol parameters for the dataset (the union of all graphs unless named).

        As in the embedded store, naming only a default graph leaves every graph
        available to ``GRAPH``; the protocol would make the named graphs empty then
        (Virtuoso follows it for ``GRAPH <iri>``, not for ``GRAPH ?g``), so the graphs
        relmark sees are named explicitly.
        """
        if default_graph is None and named_graphs is None:
            if self.engine.union_parameter:
                return [(self.engine.union_parameter, "")]
            default_graph = [None, *self.graph_names()]
        if default_graph == [None] and named_graphs is None and self.engine.native_default_graph:
            return []  # the engine's own default graph, every graph named: no parameters
        params: list[tuple[str, str]] = []
        for graph in default_graph if default_graph is not None else [None]:
            iri = self.engine_graph(graph)
            if iri is not None:
                params.append(("default-graph-uri", iri))
            elif default_graph != [None] and default_graph is not None:
                # the engine's real default graph has no IRI to name it in a list
                params.append(("default-graph-uri", "urn:relmark:empty"))
        if not params:
            params.append(("default-graph-uri", "urn:relmark:empty"))
        names = self.graph_names() if named_graphs is None else named_graphs
        if named_graphs is None and not self.engine.native_default_graph and sparql:
            # Virtuoso answers ASK { GRAPH <g> { … } } with true when <g> is not among
            # the named graphs: list every IRI the query spells out as well
            spelled = spelled_graphs(sparql)
            names = sorted(set(names) | spelled)
        params += [("named-graph-uri", g) for g in names] or [("named-graph-uri", "urn:x:none")]
        return params

    def _raw_query(self, sparql: str) -> QueryResult:
        """A query on the engine's own dataset (no parameters): relmark's bookkeeping."""
        return self._ask_engine(sparql, [], query_form(sparql))

    def _ask_engine(
        self, sparql: str, dataset: list[tuple[str, str]], form: str | None
    ) -> QueryResult:
        """The engine's answer to ``sparql`` (whose ``form`` is SELECT, ASK, … or None)."""
        graph_result = form in ("CONSTRUCT", "DESCRIBE")
        if form == "DESCRIBE":
            sparql = self.engine.describe_prologue + sparql
        if any(key in ("default-graph-uri", "named-graph-uri") for key, _ in dataset):
            # the protocol's dataset replaces the query's FROM (Protocol §2.1.4); Virtuoso
            # would use both, so the FROM clauses are not sent (the caller passed them on)
            sparql = without_from(sparql)
        headers = {"Accept": N_TRIPLES if graph_result else RESULTS_JSON}
        if self.engine.tsv_select and form == "SELECT":
            headers["Accept"] = RESULTS_TSV
        short = sum(len(key) + len(value) for key, value in dataset) < DIRECT_POST_PARAMETERS
        if self.engine.direct_post and short:
            # the query as the body, the dataset in the URL (Protocol §2.1.3): no form
            # encoding of the query on either side (~0.1 ms per request)
            headers["Content-Type"] = SPARQL_QUERY
            body = sparql.encode()
        else:  # (a long list of graphs goes in a form, not a long URL)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body, dataset = urlencode([("query", sparql), *dataset]).encode(), []
        response = self._read(
            "POST", self.config.query_url, params=dataset, body=body, headers=headers
        )
        self._check(response, "query", sparql)
        if "X-SPARQL-MaxRows" in response.headers:  # Virtuoso cut the answer short
            raise self._truncated(response.headers["X-SPARQL-MaxRows"])
        return read_results(response, self.engine.name == "virtuoso")

    def _truncated(self, limit: str) -> RemoteError:
        """Virtuoso's answer stopped at ResultSetMaxRows (also sent for an answer of exactly
        that many rows, which is refused too: the two cannot be told apart)."""
        return RemoteError(
            f"the SPARQL server ({self.backend}) cut its answer at {limit} rows; raise "
            "ResultSetMaxRows in virtuoso.ini above the largest answer relmark needs",
            self.backend,
        )

    # --- reads --------------------------------------------------------------------------
    def query(
        self,
        sparql: str,
        *,
        default_graph: list[str | None] | None = None,
        named_graphs: list[str] | None = None,
        substitutions: Mapping[str, Term | ox.Triple] | None = None,
    ) -> QueryResult:
        """Run a query on the engine; the answer as pyoxigraph results."""
        # read from the text as given, not as bound: a named question's text is read the
        # same way on every run, and its reading is kept (relmark.sparql.lexer)
        form, lateral = query_form(sparql), uses_lateral(sparql)
        if substitutions:
            sparql = bind_values(sparql, substitutions, self.engine.computed_decimals)
        if lateral and not self.supports_lateral():
            try:  # after bind_values: see sparql.rewrite
                sparql = without_lateral(sparql)
            except Unportable as error:  # reported like any store error (one line, 400/500)
                raise StoreError(str(error)) from None
        dataset = self._dataset(default_graph, named_graphs, sparql)
        return self._ask_engine(sparql, dataset, form)

    def supports_lateral(self) -> bool:
        """Whether the engine parses ``LATERAL`` (known per engine, else asked once)."""
        if self._lateral is None:
            try:
                self._raw_query(LATERAL_PROBE)
                self._lateral = True
            except (SyntaxError, RemoteError) as error:
                if isinstance(error, RemoteUnavailable):
                    raise
                self._lateral = False
        return self._lateral

    def _select(self, sparql: str, **options: object) -> list[ox.QuerySolution]:
        return list(self.query(sparql, **options))  # type: ignore[arg-type]

    def _catch_up(self) -> None:
        """Drop what was kept from the engine if writes were applied elsewhere since."""
        if self._elsewhere is not None:
            moved = self._elsewhere()
            if moved != self._seen:
                self._seen = moved  # first: a write ending during the next read is seen again
                self.forget_graphs()

    def graph_names(self) -> list[str]:
        """The named graphs relmark sees (the engine's own and staging graphs hidden)."""
        self._catch_up()
        now = time.monotonic()
        if self._graphs is not None and now - self._graphs[0] < GRAPHS_TTL:
            return list(self._graphs[1])
        pattern = "{}" if self.engine.empty_graph_pattern else "{ ?s ?p ?o }"
        # GROUP BY, not DISTINCT: Virtuoso 7.2 answers DISTINCT ?g in seconds, this in ms
        rows = selected(self._raw_query(f"SELECT ?g WHERE {{ GRAPH ?g {pattern} }} GROUP BY ?g"))
        names = sorted(
            r["g"].value
            for r in rows
            if isinstance(r["g"], ox.NamedNode) and self._visible(r["g"].value)
        )
        self._graphs = (now, names)
        return list(names)

    def forget_graphs(self) -> None:
        """Drop the list of graphs and the quad count kept for ``GRAPHS_TTL``: for a reader
        that must see what other clients wrote straight to the engine just now (a full
        inference run is how relmark takes such writes in)."""
        self._graphs = self._count = None

    def has_graph(self, graph: str) -> bool:
        pattern = "{}" if self.engine.empty_graph_pattern else "{ ?s ?p ?o }"
        return bool(self._raw_query(f"ASK {{ GRAPH <{graph}> {pattern} }}"))

    def triples(self, graph: str | None) -> Iterator[ox.Quad]:
        """The quads of one graph, fetched through the Graph Store Protocol."""
        target = ox.DefaultGraph() if graph is None else ox.NamedNode(graph)
        iri = self.engine_graph(graph)
        body = self._get_graph(iri)
        triples = list(ox.parse(body, format=ox.RdfFormat.N_TRIPLES))
        if self.engine.name == "virtuoso" and iri is not None:
            # Virtuoso's Graph Store GET stops at ResultSetMaxRows, without saying so
            expected = self.graph_size(iri)
            if len(triples) < expected:
                raise self._truncated(f"{len(triples)} of {expected}")
        for triple in triples:
            yield ox.Quad(triple.subject, triple.predicate, triple.object, target)

    def _get_graph(self, iri: str | None) -> bytes:
        params = {"default": ""} if iri is None else {"graph": iri}
        response = self._read("GET", self.gsp_url, params=params, headers={"Accept": N_TRIPLES})
        if response.status_code == 404:
            return b""
        self._check(response, "graph read")
        if self.engine.name == "virtuoso" and BOOLEAN_TYPE in response.content:
            return canonical_booleans(response.content, N_TRIPLES)
        return response.content

    def graph_size(self, graph: str) -> int:
        rows = selected(
            self._raw_query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        )
        return int(next(iter(rows))["n"].value)

    def count(self) -> int:
        """Number of quads relmark sees (cached briefly: /healthz calls it often)."""
        self._catch_up()
        now = time.monotonic()
        if self._count is not None and now - self._count[0] < GRAPHS_TTL:
            return self._count[1]
        graphs = self.graph_names()
        total = 0
        if graphs:
            rows = self._select(
                "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }",
                default_graph=[],
                named_graphs=graphs,
            )
            total = int(rows[0]["n"].value)
        rows = self._select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", default_graph=[None])
        total += int(rows[0]["n"].value)
        self._count = (now, total)
        return total

    def ping(self) -> float:
        """Seconds an ``ASK {}`` round trip takes; ``RemoteUnavailable`` when it fails."""
        started = time.perf_counter()
        response = self.transport.send(
            "GET", self.config.query_url, 5.0, params={"query": "ASK {}"}
        )
        self._check(response, "health check")
        return time.perf_counter() - started

    def dump(self, output: IO[bytes], fmt: ox.RdfFormat) -> None:
        """Every graph relmark sees, in a dataset format (N-Quads or TriG)."""
        if not fmt.supports_datasets:
            raise StoreError(f"{fmt.name} cannot hold named graphs; dump as N-Quads or TriG")
        quads = list(self.triples(None))
        for graph in self.graph_names():
            quads += self.triples(graph)
        output.write(serialized(quads, fmt))

    def copy_to(self, target: Path) -> None:
        """A local embedded store in ``target`` holding everything relmark sees here.

        For work that needs a private writable copy (a what-if's scratch store). Costs a
        full read of the remote data: fine for the demo and tests, heavy at millions.
        """
        buffer = io.BytesIO()
        self.dump(buffer, ox.RdfFormat.N_QUADS)
        copy = EmbeddedStore(target)
        try:
            copy.restore(buffer.getvalue(), ox.RdfFormat.N_QUADS)
        finally:
            copy.close()

    # --- what relmark's writes changed ---------------------------------------------------
    # The record covers writes made through this RemoteStore, as the embedded store's does;
    # writes other clients send straight to the engine are seen by the next full run
    # (``relmark infer --full``, or a rules, ontology or config change).
    def _data_write(self) -> None:
        """Before a write to data: mark the inferences stale in the meta graph, so a crash
        between the write and its refresh is repaired at the next start-up."""
        self._data_writes += 1
        try:
            self._send_update(f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ {STALE_MARK} }} }}")
        except RemoteUnavailable:
            raise
        except RemoteError:
            # refused: the data write that follows will be too, or the engine takes data
            # but not bookkeeping (another relmark's endpoint): there is nothing to mark
            return
        self._marked = True

    def inferences_stale(self) -> bool:
        """Whether data was written since the inferences were last brought up to date."""
        return bool(self._raw_query(f"ASK {{ GRAPH <{META_GRAPH}> {{ {STALE_MARK} }} }}"))

    def data_writes(self) -> int:
        """Data writes through this store object (a refresh notes it before it starts)."""
        return self._data_writes

    def inferences_current(self, as_of: int) -> None:
        """The inferences reflect every data write up to ``as_of`` (a ``data_writes()``)."""
        if self._data_writes == as_of and self._marked is not False:
            self._send_update(f"DELETE DATA {{ GRAPH <{META_GRAPH}> {{ {STALE_MARK} }} }}")
            self._marked = False

    def take_changes(self) -> Changes | None:
        """The data quads written through this store since the last call (``ChangeRecord``)."""
        return self._record.take()

    def _small_graph(self, graph: str) -> list[ox.Quad] | None:
        """A data graph's quads before a write replaces or drops it; None when too big."""
        if graph in SYSTEM_GRAPHS or self.graph_size(graph) > CHANGE_LIMIT:
            return None
        return list(self.triples(graph))

    # --- writes -------------------------------------------------------------------------
    def update(self, sparql: str, *, system: bool = False) -> None:
        """A SPARQL 1.1 Update; relmark's default graph is the engine's (or emulated).

        ``system=True`` marks relmark's own bookkeeping (inferences, meta); any other
        update makes the record of changed data unknown (the next refresh is a full run).
        """
        if not system:
            self._data_write()
        self._send_update(sparql)
        if not system:
            self._record.unknown()

    def _send_update(self, sparql: str) -> None:
        if self.engine.needs_silent_drop:
            # relmark's graphs exist once they hold a triple (checked on a scratch store by
            # update_validated); Virtuoso's only once CREATEd: a plain DROP would fail there
            sparql = silent_drops(sparql)
        data = [("update", sparql)]
        if not self.engine.native_default_graph:
            # Virtuoso: default-graph-uri names the graph an update's GRAPH-less operations
            # write and read (how relmark's default graph is emulated); it also hides every
            # graph not listed in named-graph-uri from GRAPH <iri> patterns, so those are
            # listed: the graphs relmark sees and every IRI the update spells out.
            data.append(("default-graph-uri", EMULATED_DEFAULT_GRAPH))
            spelled = spelled_graphs(sparql)
            for graph in sorted(set(self.graph_names()) | spelled):
                data.append(("named-graph-uri", graph))
        try:
            response = self._write("POST", self.update_url, form=data)
            self._check(response, "update", sparql)
        except BaseException:
            self._graphs = None  # (an engine without transactions may have done part of it)
            raise
        self._graphs_after(sparql)

    def _graphs_after(self, sparql: str) -> None:
        """Keep the cached list of graphs true after an update relmark sent.

        Listing the graphs scans the store on Oxigraph's server (12 ms at 100k triples, and
        every write would need it again); asking about each graph the update names costs
        ~1 ms. An update naming graphs by a variable, or ALL or NAMED ones, drops the list.
        """
        if self._graphs is None:
            return
        if may_write_any_graph(sparql):
            self._graphs = None
            return
        names = set(self._graphs[1])
        for graph in spelled_graphs(sparql):
            if self._visible(graph):
                if self.has_graph(graph):
                    names.add(graph)
                else:
                    names.discard(graph)
        self._graphs = (self._graphs[0], sorted(names))

    def update_validated(
        self,
        sparql: str,
        check: Callable[[list[ox.Quad], list[ox.Quad]], None],
        graphs: Iterable[str] | None = None,
    ) -> None:
        """Apply an update only if ``check(added, removed)`` accepts the change it makes.

        The update runs first on a local in-memory copy of the graphs it may touch (all of
        relmark's non-system graphs when ``graphs`` is None) and the default graph;
        ``check`` sees the result. Validated updates are serialised in this process.
        """
        with self._write_lock:
            # the graphs as the engine holds them now, not as kept: another client may
            # have written one a moment ago, and what is checked must be what is there
            self.forget_graphs()
            present = set(self.graph_names()) - SYSTEM_GRAPHS
            wanted = present if graphs is None else present & set(graphs)
            scratch = ox.Store()
            scratch.bulk_extend(self.triples(None))
            for graph in sorted(wanted):
                scratch.bulk_extend(self.triples(graph))
            before = set(scratch)  # what the update may change, as it is now
            scratch.update(sparql)
            named = {g.value for g in scratch.named_graphs() if isinstance(g, ox.NamedNode)}
            touched = named - SYSTEM_GRAPHS if graphs is None else named & set(graphs)
            quads = list(scratch.quads_for_pattern(None, None, None, ox.DefaultGraph()))
            for graph in sorted(touched):
                quads += scratch.quads_for_pattern(None, None, None, ox.NamedNode(graph))
            after = set(quads)
            added, removed = list(after - before), list(before - after)
            check(added, removed)
            self._data_write()
            if any(
                isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)
                for q in removed
            ):
                # DELETE DATA cannot name a blank node: the engine evaluates the update
                # itself (the one case where it may differ from what was checked)
                self._send_update(sparql)
            else:
                # what was checked is what is written: the update is not evaluated again
                operations = [
                    f"{verb} DATA {{\n{self._quad_block(part)}}}"
                    for verb, part in (("DELETE", removed), ("INSERT", added))
                    if part
                ]
                operations += [f"CREATE SILENT GRAPH <{g}>" for g in sorted(touched - present)]
                operations += [f"DROP SILENT GRAPH <{g}>" for g in sorted(wanted - touched)]
                if operations:
                    self._send_update(" ;\n".join(operations))
            self._record.note(added, removed)

    def add_quads(self, quads: Iterable[ox.Quad]) -> None:
        """Add quads with one ``INSERT DATA`` (one request: all or none).

        All of them are noted as added, also those already there: the incremental
        refresh re-derives what they reach and finds it unchanged.
        """
        quads = list(dict.fromkeys(quads))
        body = self._quad_block(quads)
        if body:
            if not all(is_system_graph(q.graph_name) for q in quads):
                self._data_write()
            self._send_update(f"INSERT DATA {{\n{body}}}")
            self._record.note(quads, ())

    def _quad_block(self, quads: Iterable[ox.Quad | ox.Triple]) -> str:
        return update_block(quads, self.engine_graph)

    def replace_graph(self, graph: str, triples: Iterable[ox.Triple | ox.Quad]) -> None:
        """Replace a graph's content all or none (staged, then moved into place)."""
        data = serialized(
            (ox.Triple(t.subject, t.predicate, t.object) for t in triples),
            ox.RdfFormat.N_TRIPLES,
        )
        self.bulk_replace_graphs({graph: [(ox.RdfFormat.N_TRIPLES, data, graph)]})

    def bulk_replace_graphs(
        self, writes: Mapping[str, Iterable[BulkPart]], *, record: bool = True
    ) -> None:
        """Replace several graphs, all or none: stage each, then one ``MOVE`` request.

        Every part is parsed here first, so a syntax error (``SyntaxError`` whose
        ``filename`` is the part's label) stops the load before anything is sent.
        ``record=False``: the caller declares the changes unknown itself, so the old
        graphs are not read to note them (``restore``).
        """
        parsed = {graph: self._parsed(list(parts)) for graph, parts in writes.items()}
        staged = {graph: chunks for graph, (chunks, _) in parsed.items()}
        data = [graph for graph in sorted(staged) if graph not in SYSTEM_GRAPHS]
        old = {graph: self._small_graph(graph) for graph in data} if record else {}
        run = uuid.uuid4().hex
        staging = {graph: f"{STAGING_PREFIX}{run}:{n}" for n, graph in enumerate(sorted(staged))}
        try:
            for graph, chunks in staged.items():
                for chunk in chunks:
                    self._post_graph(staging[graph], chunk)
            operations = []
            for graph in sorted(staged):
                if any(staged[graph]):
                    operations.append(f"MOVE SILENT <{staging[graph]}> TO <{graph}>")
                else:
                    operations.append(f"DROP SILENT GRAPH <{graph}>")
            if data:
                self._data_write()
            self._send_update(" ;\n".join(operations))
        finally:
            self.drop_staging(staging.values())
        for graph in data if record else ():
            triples = parsed[graph][1]
            node = ox.NamedNode(graph)
            new = (
                None
                if triples is None
                else [ox.Quad(t.subject, t.predicate, t.object, node) for t in triples]
            )
            self._record.replaced(graph, old[graph], new)

    def _parsed(self, parts: list[BulkPart]) -> tuple[list[bytes], list[ox.Triple] | None]:
        """A graph's parts as N-Triples request bodies, and its triples (None: too many to
        be noted as changes).

        A blank node's label means the same node only within one request, so a part with
        blank nodes (an OWL list, say) goes in one request whatever its size; a part
        without goes in chunks of ``CHUNK_TRIPLES`` triples.
        """
        chunks: list[bytes] = []
        kept: list[ox.Triple] | None = []
        for part in parts:
            try:
                statements: Iterable[ox.Quad]
                if not isinstance(part[0], ox.RdfFormat):
                    statements = part[1]
                else:
                    fmt, source, _ = part
                    data = source if isinstance(source, bytes) else source.read()
                    statements = ox.parse(data, format=fmt)
                triples = [ox.Triple(t.subject, t.predicate, t.object) for t in statements]
            except SyntaxError as error:
                error.filename = part[2]
                raise
            blank = any(
                isinstance(t.subject, ox.BlankNode) or isinstance(t.object, ox.BlankNode)
                for t in triples
            )
            size = len(triples) if blank else CHUNK_TRIPLES
            for start in range(0, len(triples), max(size, 1)):
                batch = triples[start : start + size]
                chunks.append(serialized(batch, ox.RdfFormat.N_TRIPLES))
            if kept is not None:
                kept = kept + triples if len(kept) + len(triples) <= CHANGE_LIMIT else None
        return chunks, kept

    def _post_graph(self, graph: str, body: bytes) -> None:
        try:
            response = self._write(
                "POST",
                self.gsp_url,
                params={"graph": graph},
                body=body,
                headers={"Content-Type": N_TRIPLES},
            )
            self._check(response, "graph write")
        except BaseException:
            self._graphs = None
            raise
        if self._graphs is not None and self._visible(graph) and body.strip():
            self._graphs = (self._graphs[0], sorted({*self._graphs[1], graph}))

    def post_lines(self, graph: str, lines: Iterable[str]) -> None:
        """N-Triples lines added to ``graph`` (a staging graph) through the Graph Store
        Protocol, in requests of ``CHUNK_TRIPLES`` lines."""
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == CHUNK_TRIPLES:
                self._post_graph(graph, ("\n".join(batch) + "\n").encode("utf-8"))
                batch = []
        if batch:
            self._post_graph(graph, ("\n".join(batch) + "\n").encode("utf-8"))

    def drop_staging(self, graphs: Iterable[str]) -> None:
        """Drop staging graphs (already moved ones are gone: SILENT)."""
        operations = [f"DROP SILENT GRAPH <{g}>" for g in graphs]
        if operations:
            with contextlib.suppress(StoreError):
                self._send_update(" ;\n".join(operations))

    def drop_graph(self, graph: str) -> bool:
        """Remove a named graph; False when there was none."""
        if not self.has_graph(graph):
            return False
        old = self._small_graph(graph)
        if graph not in SYSTEM_GRAPHS:
            self._data_write()
        self._send_update(f"DROP SILENT GRAPH <{graph}>")  # Virtuoso: fails if never CREATEd
        self._record.replaced(graph, old, [])
        return True

    def restore(self, source: bytes | IO[bytes], fmt: ox.RdfFormat) -> None:
        """Replace every graph relmark sees with a dump's, staged then moved, all or none."""
        data = source if isinstance(source, bytes) else source.read()
        by_graph: dict[str | None, list[ox.Triple]] = {}
        for quad in ox.parse(data, format=fmt):
            graph = None if isinstance(quad.graph_name, ox.DefaultGraph) else quad.graph_name.value
            by_graph.setdefault(graph, []).append(
                ox.Triple(quad.subject, quad.predicate, quad.object)
            )
        old = [*self.graph_names(), None]
        writes: dict[str, list[BulkPart]] = {}
        for graph in set(old) | set(by_graph):
            iri = self.engine_graph(graph)
            if iri is None:  # the engine's own default graph: not a graph MOVE can name
                continue
            triples = by_graph.get(graph, [])
            body = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) if triples else b""
            writes[iri] = [(ox.RdfFormat.N_TRIPLES, body, iri)] if body else []
        self.bulk_replace_graphs(writes, record=False)  # (every change is unknown: below)
        if self.engine.native_default_graph:
            block = self._quad_block(
                ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph())
                for t in by_graph.get(None, [])
            )
            default = "DROP SILENT DEFAULT" + (f" ;\nINSERT DATA {{\n{block}}}" if block else "")
            self._send_update(default)  # (the meta graph is the dump's: no stale mark)
        self._record.unknown()


def remote_config(location: str, settings: object | None = None) -> RemoteConfig:
    """The configuration of ``sparql+http(s)://…``, endpoints and credentials from
    ``settings``."""
    options: dict[str, object] = {}
    if settings is not None:
        for key, attribute in (
            ("update_url", "update_url"),
            ("gsp_url", "gsp_url"),
            ("user", "remote_user"),
            ("password", "remote_password"),
            ("bearer", "remote_bearer"),
            ("engine", "remote_engine"),
            ("timeout", "query_timeout"),
            ("lookup_ttl", "lookup_ttl"),
        ):
            options[key] = getattr(settings, attribute, None)
    return RemoteConfig.from_location(location, **options)


def open_remote(location: str, settings: object | None = None) -> RemoteStore:
    """A ``RemoteStore`` for ``sparql+http(s)://…``, configured from ``settings``."""
    return RemoteStore(remote_config(location, settings))
