"""The remote back end: the ``Store`` protocol over SPARQL 1.1 Protocol, Update and Graph Store.

``RELMARK_STORE=sparql+http://host:port/path`` puts relmark in front of an existing SPARQL
engine. Only the three W3C protocols are spoken (a ``requests`` session with pooled
connections; queries, the hot path, go through its urllib3 pool directly: ``_pooled``),
so any engine works; what differs between engines is kept in one place,
``Engine`` (detected from the ``Server`` header, or set with ``RELMARK_REMOTE_ENGINE``):

- **Oxigraph server** has a real default graph and a ``union-default-graph`` parameter:
  relmark's "default graph is the union of all graphs" maps onto it directly.
- **Virtuoso** has no default graph of its own (``INSERT DATA`` without ``GRAPH`` fails,
  and a query without a dataset sees every graph, its own system graphs included).
  relmark's default graph is therefore the graph ``urn:relmark:default`` there, and the
  union is passed explicitly as ``default-graph-uri``/``named-graph-uri`` lists of the
  graphs relmark sees (Virtuoso's own ``virtrdf#``/``ldp#`` graphs are hidden). Virtuoso
  also has no notion of an empty graph, so ``MOVE`` from an empty staging graph simply
  empties the target (the standard says it is an error; we never rely on either).
  Virtuoso 7.2 has no SPARQL 1.2 ``LATERAL`` (the named questions and label look-ups use
  it): queries are sent rewritten by ``portable_sparql.without_lateral``. It answers
  booleans as 0/1 (read back as false/true, ``_canonical_booleans``) and exact seconds
  typed xsd:dayTimeDuration as numbers (read back as durations, ``_virtuoso_durations``);
  a decimal parameter is bound computed, not as a constant (``Engine.computed_decimals``);
  the rest of its deviations (COALESCE over an unbound value, ``<=`` on dates, joins on
  computed values) are written around in the query texts themselves (see the README,
  "Running on a SPARQL server").
- **generic**: the standard only, union passed explicitly; whether it parses ``LATERAL``
  is asked once (``supports_lateral``).

Results come back as pyoxigraph objects (``parse_query_results`` for SELECT/ASK; a
CONSTRUCT's triples are re-emitted from an in-memory store so they are a real
``QueryTriples``), so the rest of relmark cannot tell the back ends apart.

Loads are all-or-nothing: parsed locally first, written into staging graphs through the
Graph Store Protocol, then moved into place with one update request (``MOVE``), the
staging graphs dropped whatever happens. The store records what relmark's own writes
changed (``ChangeRecord``, as the embedded store does), so the inferences follow them
incrementally; a mark in the meta graph says a data write still awaits its refresh.
Reads are retried on connection errors (they are idempotent); writes never are. An
unreachable engine raises ``RemoteUnavailable``, which the HTTP layer answers with 503
naming the back end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO
from urllib.parse import urlencode, urlsplit, urlunsplit

import pyoxigraph as ox
import requests
import urllib3
from requests.adapters import HTTPAdapter

from relmark.errors import BackendFailed, BackendUnavailable, QueryTimeout
from relmark.settings import LOOKUP_TTL
from relmark.sparql.portable import uses_lateral, without_lateral
from relmark.sparql.text import (
    QUERY_FORM,
    code_only,
    kept_for_short_texts,
    masked,
    may_write_any_graph,
    query_form,
)
from relmark.stores.base import (
    CHANGE_LIMIT,
    CONTENT_HASH,
    BulkPart,
    ChangeRecord,
    Changes,
    QueryResult,
    StoreError,
    Term,
    is_system_graph,
)
from relmark.stores.embedded import ForwardedWrites, WriteForwarder, update_block
from relmark.stores.remote.lookup_cache import LookupCache
from relmark.vocab import INFERRED_GRAPH, META_GRAPH, SYSTEM_GRAPHS

#: Where relmark keeps "its" default graph on an engine without one (Virtuoso).
EMULATED_DEFAULT_GRAPH = "urn:relmark:default"
#: Staging graphs of loads in progress; dropped when a load ends, however it ends.
STAGING_PREFIX = "urn:relmark:staging:"
#: Graphs an engine keeps for itself; relmark neither lists nor reads them.
VIRTUOSO_SYSTEM_PREFIXES = (
    "http://www.openlinksw.com/",
    "http://www.w3.org/ns/ldp#",
    "http://localuriqaserver/",
)
#: Triples per Graph Store request when staging a load (keeps request bodies moderate).
CHUNK_TRIPLES = 100_000
#: Read attempts on a connection error (reads only: a write is never sent twice).
READ_ATTEMPTS = 3
#: Writes (loads, MOVE, materialisation) may take much longer than a query.
WRITE_TIMEOUT = 600.0
#: How long the list of graphs is trusted between relmark's own writes.
GRAPHS_TTL = 2.0
#: In the meta graph while a data write has not been followed by its inference refresh.
STALE_MARK = f"<{INFERRED_GRAPH}> <urn:relmark:meta:inferencesStale> true"

XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"
SPARQL_QUERY = "application/sparql-query"
#: Dataset parameters up to this many characters go in the URL of a direct POST.
DIRECT_POST_PARAMETERS = 2000
RESULTS_JSON = "application/sparql-results+json"
RESULTS_XML = "application/sparql-results+xml"
RESULTS_TSV = "text/tab-separated-values"
N_TRIPLES = "application/n-triples"


@dataclass(frozen=True)
class EngineAnswer:
    """An engine's reply to a query, read whole: what ``_check`` and ``_results`` read of
    a ``requests.Response``, for replies that came through the pool directly (``_pooled``)."""

    status_code: int
    headers: Mapping[str, str]  # urllib3's HTTPHeaderDict: case-insensitive
    content: bytes

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


#: A reply of the engine, whichever way it came.
Reply = requests.Response | EngineAnswer


class RemoteError(StoreError, BackendFailed):
    """The remote engine refused or failed a request; ``backend`` names it."""

    def __init__(self, message: str, backend: str) -> None:
        super().__init__(message)
        self.backend = backend

    def __reduce__(self) -> tuple:  # pickled from a serving worker's writer: same error there
        return type(self), (str(self), self.backend)


class RemoteUnavailable(RemoteError, BackendUnavailable):
    """The remote engine cannot be reached (down, refusing, or slower than our timeout)."""


class RemoteTimeout(RemoteUnavailable, QueryTimeout):
    """A read the engine did not answer within RELMARK_QUERY_TIMEOUT: our query timeout."""

    def __init__(self, message: str, backend: str, seconds: float) -> None:
        super().__init__(message, backend)
        self.seconds = seconds

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.backend, self.seconds)


@dataclass(frozen=True)
class Engine:
    """What an engine does differently from the standard (see the module docstring)."""

    name: str
    native_default_graph: bool
    union_parameter: str | None
    hidden_prefixes: tuple[str, ...] = ()
    #: Whether ``GRAPH ?g {}`` lists graphs (cheap) or ``?s ?p ?o`` must be matched.
    empty_graph_pattern: bool = True
    #: Whether the engine parses SPARQL 1.2 ``LATERAL`` (None: ask it once, on first need);
    #: without it queries are rewritten by ``portable_sparql.without_lateral``.
    lateral: bool | None = None
    #: Put before a DESCRIBE so the engine describes as pyoxigraph does (the resource's own
    #: statements, blank nodes followed); DESCRIBE's answer is up to each engine.
    describe_prologue: str = ""
    #: Whether ``DROP``/``CLEAR GRAPH`` fail on a graph that has triples but was never
    #: ``CREATE``d (Virtuoso): relmark sends them ``SILENT`` (see ``update``).
    needs_silent_drop: bool = False
    #: Whether an xsd:decimal must be bound as a computed value, not a constant (Virtuoso
    #: 7.2 sorts a projected decimal constant into a (0,0)-precision column: SR128).
    computed_decimals: bool = False
    #: Whether queries go as the POST body (``application/sparql-query``, the dataset in
    #: the URL) rather than a form: ~0.1 ms less per request; Virtuoso 7.2 stalls on it.
    direct_post: bool = False
    #: Whether SELECT answers are asked for as TSV (lossless, unlike CSV): half the bytes
    #: of JSON, parsed in half the time (0.2 ms against 0.4 for 100 rows of 5 terms).
    tsv_select: bool = False


ENGINES = {
    "oxigraph": Engine(
        "oxigraph", True, "union-default-graph", lateral=True, direct_post=True, tsv_select=True
    ),
    "virtuoso": Engine(
        "virtuoso",
        False,
        None,
        VIRTUOSO_SYSTEM_PREFIXES,
        False,
        lateral=False,
        # Virtuoso's own DESCRIBE adds every statement naming the resource as object
        describe_prologue='define sql:describe-mode "CBD"\n',
        needs_silent_drop=True,
        computed_decimals=True,
    ),
    "generic": Engine("generic", True, None, (), False),
}
#: Asked once of a generic engine: does it parse LATERAL?
LATERAL_PROBE = "SELECT ?y WHERE { VALUES ?x { 1 } LATERAL { BIND(?x AS ?y) } }"


@dataclass(frozen=True)
class RemoteConfig:
    """Endpoints, credentials and timeouts of a remote store."""

    query_url: str
    update_url: str | None = None
    gsp_url: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    bearer: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    engine: str | None = None
    lookup_ttl: float = LOOKUP_TTL

    @classmethod
    def from_location(cls, location: str, **options: object) -> RemoteConfig:
        """``sparql+http://host/path`` → query URL ``http://host/path`` (+ options)."""
        if not location.startswith(("sparql+http://", "sparql+https://")):
            raise StoreError(f"{location!r} is not a sparql+http(s):// location")
        given = {k: v for k, v in options.items() if v is not None}
        return cls(query_url=location[len("sparql+") :], **given)  # type: ignore[arg-type]


def _sibling(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class RemoteStore:
    """relmark's store on a remote SPARQL 1.1 engine (query + update + Graph Store)."""

    remote = True

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        # what /healthz and messages name (deliberately no ``path``: code that copies a
        # local store's directory looks for one, and there is none here)
        self.location = "sparql+" + config.query_url
        self._session = requests.Session()
        # the environment (proxies, CA bundle) is read once here, not on every request
        # (requests re-reads it per request unless told not to: ~0.15 ms each)
        self._session.trust_env = False
        self._session.proxies.update(requests.utils.get_environ_proxies(config.query_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self._session.verify = bundle
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        if config.bearer:
            self._session.headers["Authorization"] = f"Bearer {config.bearer}"
        self._auth = (config.user, config.password or "") if config.user else None
        self._pools: dict[str, tuple[urllib3.HTTPConnectionPool, str]] = {}  # (_pool_for)
        self._redirected: set[str] = set()  # query URLs left to requests (_pooled)
        # what the session adds to every request, for the queries ``_pooled`` sends
        self._pool_headers = dict(self._session.headers)
        if config.user:
            basic = f"{config.user}:{config.password or ''}"
            self._pool_headers["Authorization"] = urllib3.util.make_headers(basic_auth=basic)[
                "authorization"
            ]
        self._graphs: tuple[float, list[str]] | None = None
        self._count: tuple[float, int] | None = None
        self._write_lock = threading.Lock()
        self._deadlines = threading.local()  # each request thread's (see ``deadline``)
        self.engine = self._detect(config.engine)
        self._lateral = self.engine.lateral
        self.update_url = config.update_url or self._default_update_url()
        self.gsp_url = config.gsp_url or self._default_gsp_url()
        self._record = ChangeRecord()
        self._data_writes = 0
        self._marked: bool | None = None  # whether the meta graph holds STALE_MARK
        self._writes_sent = 0
        # labels and class checks already looked up (relmark.lookup_cache)
        self.label_cache: LookupCache[dict[str, str]] = LookupCache(
            lambda: self._writes_sent, config.lookup_ttl
        )
        self.check_cache: LookupCache[bool] = LookupCache(
            lambda: self._writes_sent, config.lookup_ttl
        )

    # --- set-up -------------------------------------------------------------------------
    def _detect(self, wanted: str | None) -> Engine:
        """The engine named in the settings, else the one the ``Server`` header names."""
        if wanted:
            try:
                return ENGINES[wanted.lower()]
            except KeyError:
                known = ", ".join(sorted(ENGINES))
                raise StoreError(f"unknown remote engine {wanted!r}; use one of {known}") from None
        response = self._read("GET", self.config.query_url, params={"query": "ASK {}"})
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
        engine = getattr(self, "engine", None)  # unknown while the engine is being detected
        name = engine.name if engine else "SPARQL server"
        return f"{name} at {self.config.query_url}"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ---------------------------------------------------------------------------
    def _send(
        self, method: str, url: str, timeout: float, pooled: bool = False, **kwargs: object
    ) -> Reply:
        """One request; ``pooled`` (a POST with a ``bytes`` body) goes by ``_pooled``."""
        try:
            if pooled and url not in self._redirected:
                response: Reply | None = self._pooled(url, timeout, **kwargs)  # type: ignore[arg-type]
                if response is not None:
                    return response
            response = self._session.request(
                method, url, auth=self._auth, timeout=(min(5.0, timeout), timeout), **kwargs
            )
        except requests.Timeout as error:
            raise RemoteUnavailable(
                f"the SPARQL server ({self.backend}) did not answer within {timeout:g} s",
                self.backend,
            ) from error
        except requests.ConnectionError as error:
            raise RemoteUnavailable(
                f"cannot reach the SPARQL server ({self.backend}): {error}", self.backend
            ) from error
        return response

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Reads on this thread, inside the block, end ``seconds`` from now at the latest.

        How a request's query timeout is kept on a remote store without handing its work to
        another thread (``QueryRunner``): every request to the engine gets what is left of
        the time as its HTTP timeout, and a read begun with none left is a ``RemoteTimeout``.
        """
        outer = getattr(self._deadlines, "at", None)
        self._deadlines.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._deadlines.at = outer

    def _read_timeout(self) -> float:
        """The configured timeout, or what is left of this thread's ``deadline``."""
        at = getattr(self._deadlines, "at", None)
        if at is None:
            return self.config.timeout
        left = min(self.config.timeout, at - time.monotonic())
        if left <= 0:
            raise RemoteTimeout(
                f"the SPARQL server ({self.backend}) did not answer within the query timeout",
                self.backend,
                self.config.timeout,
            )
        return left

    def _pooled(
        self,
        url: str,
        timeout: float,
        data: bytes,
        headers: Mapping[str, str],
        params: list[tuple[str, str]] | None = None,
    ) -> EngineAnswer | None:
        """A POST straight through the session's own urllib3 pool; None for a redirect
        (left to ``requests``, which follows it, for this URL from then on).

        Why: the query is relmark's hot path, and requests' machinery around each request
        (preparing it, merging settings, hooks, cookies, wrapping the reply) cost 0.4 ms of
        CPU per question, as much as the rest of relmark's work on a 100-row page
        (measured against the 1M-triple Oxigraph server). The pool is the session's, so the
        proxies, CA bundle, credentials and kept-alive connections are the same. urllib3's
        errors are raised as the ``requests`` errors they stand for, so ``_send`` and
        ``_read`` treat both ways alike.
        """
        pool, target = self._pool_for(url)
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        try:
            reply = pool.urlopen(
                "POST",
                target,
                body=data,
                headers={**self._pool_headers, **headers},
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
                timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
            )
        except urllib3.exceptions.ReadTimeoutError as error:
            raise requests.ReadTimeout(error) from error
        except urllib3.exceptions.NewConnectionError as error:  # (a ConnectTimeoutError too)
            raise requests.ConnectionError(error) from error
        except urllib3.exceptions.ConnectTimeoutError as error:
            raise requests.ConnectTimeout(error) from error
        except urllib3.exceptions.HTTPError as error:  # reset, closed, TLS, proxy
            raise requests.ConnectionError(error) from error
        if 300 <= reply.status < 400:
            self._redirected.add(url)  # from now on sent by requests, which follows it
            return None
        return EngineAnswer(reply.status, reply.headers, reply.data)

    def _pool_for(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The session's urllib3 pool for ``url``, and what to ask it for (the path, or the
        whole URL through a proxy), as ``requests``' adapter would choose them. Kept per
        URL (finding them costs 0.06 ms) while the pool is open: the session's pool manager
        closes pools it no longer keeps."""
        kept = self._pools.get(url)
        if kept is not None and kept[0].pool is not None:
            return kept
        prepared = requests.Request("POST", url).prepare()
        adapter = self._session.get_adapter(url)
        pool = adapter.get_connection_with_tls_context(
            prepared, self._session.verify, self._session.proxies, self._session.cert
        )
        self._pools[url] = pool, adapter.request_url(prepared, self._session.proxies)
        return self._pools[url]

    def _read(self, method: str, url: str, **kwargs: object) -> Reply:
        """A read, retried on connection errors (never on timeouts: the query was slow)."""
        for attempt in range(READ_ATTEMPTS):
            try:
                response = self._send(method, url, self._read_timeout(), **kwargs)
            except RemoteUnavailable as error:
                cause = error.__cause__
                if isinstance(cause, requests.ReadTimeout):  # connected, then no answer
                    raise RemoteTimeout(str(error), self.backend, self.config.timeout) from error
                if isinstance(cause, requests.Timeout):  # could not even connect in time
                    raise
                if attempt + 1 == READ_ATTEMPTS:
                    raise
                time.sleep(0.1 * (attempt + 1))
                continue
            return response
        raise AssertionError("unreachable")

    def _write(self, method: str, url: str, **kwargs: object) -> requests.Response:
        """A write (never retried); the caller keeps the cached graph list true."""
        try:
            return self._send(method, url, max(WRITE_TIMEOUT, self.config.timeout), **kwargs)
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
        if response.status_code == 400 or _looks_like_syntax(body):
            if what == "query" and text is not None:
                _raise_local_syntax_error(text)
            raise SyntaxError(f"the SPARQL server rejected the {what}: {_first_lines(body)}")
        if response.status_code in (502, 503, 504):
            raise RemoteUnavailable(
                f"the SPARQL server ({self.backend}) is unavailable ({response.status_code})",
                self.backend,
            )
        raise RemoteError(
            f"the SPARQL server ({self.backend}) failed the {what} "
            f"({response.status_code}): {_first_lines(body)}",
            self.backend,
        )

    # --- datasets -----------------------------------------------------------------------
    def _graph_iri(self, graph: str | None) -> str | None:
        """The remote graph standing for one of relmark's (None = the default graph)."""
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
            iri = self._graph_iri(graph)
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
            spelled = _spelled_graphs(sparql)
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
            "POST", self.config.query_url, pooled=True, params=dataset, data=body, headers=headers
        )
        self._check(response, "query", sparql)
        if "X-SPARQL-MaxRows" in response.headers:  # Virtuoso cut the answer short
            raise self._truncated(response.headers["X-SPARQL-MaxRows"])
        return _results(response, self.engine.name == "virtuoso")

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
        # same way on every run, and its reading is kept (relmark.sparql_text)
        form, lateral = query_form(sparql), uses_lateral(sparql)
        if substitutions:
            sparql = bind_values(sparql, substitutions, self.engine.computed_decimals)
        if lateral and not self.supports_lateral():
            sparql = without_lateral(sparql)  # after bind_values: see portable_sparql
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

    def graph_names(self) -> list[str]:
        """The named graphs relmark sees (the engine's own and staging graphs hidden)."""
        now = time.monotonic()
        if self._graphs is not None and now - self._graphs[0] < GRAPHS_TTL:
            return list(self._graphs[1])
        pattern = "{}" if self.engine.empty_graph_pattern else "{ ?s ?p ?o }"
        # GROUP BY, not DISTINCT: Virtuoso 7.2 answers DISTINCT ?g in seconds, this in ms
        rows = self._raw_query(f"SELECT ?g WHERE {{ GRAPH ?g {pattern} }} GROUP BY ?g")
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
        iri = self._graph_iri(graph)
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
        if self.engine.name == "virtuoso" and _BOOLEAN in response.content:
            return _canonical_booleans(response.content, N_TRIPLES)
        return response.content

    def graph_size(self, graph: str) -> int:
        rows = self._raw_query(
            f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
        )
        return int(next(iter(rows))["n"].value)

    def count(self) -> int:
        """Number of quads relmark sees (cached briefly: /healthz calls it often)."""
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
        response = self._send("GET", self.config.query_url, 5.0, params={"query": "ASK {}"})
        self._check(response, "health check")
        return time.perf_counter() - started

    def dump(self, output: IO[bytes], fmt: ox.RdfFormat) -> None:
        """Every graph relmark sees, in a dataset format (N-Quads or TriG)."""
        if not fmt.supports_datasets:
            raise StoreError(f"{fmt.name} cannot hold named graphs; dump as N-Quads or TriG")
        quads = list(self.triples(None))
        for graph in self.graph_names():
            quads += self.triples(graph)
        output.write(ox.serialize(quads, format=fmt))

    def copy_to(self, target: Path) -> None:
        """A local embedded store in ``target`` holding everything relmark sees here.

        For work that needs a private writable copy (a what-if's scratch store). Costs a
        full read of the remote data: fine for the demo and tests, heavy at millions.
        """
        from relmark.stores.embedded import EmbeddedStore

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
            sparql = _silent_drops(sparql)
        data = [("update", sparql)]
        if not self.engine.native_default_graph:
            # Virtuoso: default-graph-uri names the graph an update's GRAPH-less operations
            # write and read (how relmark's default graph is emulated); it also hides every
            # graph not listed in named-graph-uri from GRAPH <iri> patterns, so those are
            # listed: the graphs relmark sees and every IRI the update spells out.
            data.append(("default-graph-uri", EMULATED_DEFAULT_GRAPH))
            spelled = _spelled_graphs(sparql)
            for graph in sorted(set(self.graph_names()) | spelled):
                data.append(("named-graph-uri", graph))
        try:
            response = self._write("POST", self.update_url, data=data)
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
        for graph in _spelled_graphs(sparql):
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
        return update_block(quads, self._graph_iri)

    def replace_graph(self, graph: str, triples: Iterable[ox.Triple | ox.Quad]) -> None:
        """Replace a graph's content all or none (staged, then moved into place)."""
        data = ox.serialize(
            (ox.Triple(t.subject, t.predicate, t.object) for t in triples),
            format=ox.RdfFormat.N_TRIPLES,
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
            self._drop_staging(staging.values())
        for graph in data if record else ():
            triples = parsed[graph][1]
            node = ox.NamedNode(graph)
            new = None if triples is None else [ox.Quad(*t, node) for t in triples]
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
        for fmt, source, label in parts:
            try:
                if fmt == "quads":
                    statements: Iterable = source  # type: ignore[assignment]
                else:
                    if not isinstance(source, bytes):
                        source = source.read()  # type: ignore[union-attr]
                    statements = ox.parse(source, format=fmt)  # type: ignore[arg-type]
                triples = [ox.Triple(t.subject, t.predicate, t.object) for t in statements]
            except SyntaxError as error:
                error.filename = label
                raise
            blank = any(
                isinstance(t.subject, ox.BlankNode) or isinstance(t.object, ox.BlankNode)
                for t in triples
            )
            size = len(triples) if blank else CHUNK_TRIPLES
            for start in range(0, len(triples), max(size, 1)):
                batch = triples[start : start + size]
                chunks.append(ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES))
            if kept is not None:
                kept = kept + triples if len(kept) + len(triples) <= CHANGE_LIMIT else None
        return chunks, kept

    def _post_graph(self, graph: str, body: bytes) -> None:
        try:
            response = self._write(
                "POST",
                self.gsp_url,
                params={"graph": graph},
                data=body,
                headers={"Content-Type": N_TRIPLES},
            )
            self._check(response, "graph write")
        except BaseException:
            self._graphs = None
            raise
        if self._graphs is not None and self._visible(graph) and body.strip():
            self._graphs = (self._graphs[0], sorted({*self._graphs[1], graph}))

    def _drop_staging(self, graphs: Iterable[str]) -> None:
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
            iri = self._graph_iri(graph)
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

    # --- the ontology, shapes and config graphs --------------------------------------
    def sync_file_graph(self, graph: str, paths: list[Path]) -> bool:
        """(Re)load a system graph from Turtle files when their content changed."""
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        wanted = ox.Literal(digest.hexdigest())
        rows = self._raw_query(
            f"SELECT ?h WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{CONTENT_HASH.value}> ?h }} }}"
        )
        if [r["h"] for r in rows] == [wanted]:
            return False
        triples: list[ox.Triple] = []
        for path in paths:
            triples.extend(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
        self.replace_graph(graph, triples)
        hash_iri = CONTENT_HASH.value
        self.update(
            f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> ?h }} }} ;"
            f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{hash_iri}> {wanted} }} }}",
            system=True,
        )
        return True


# --- results ---------------------------------------------------------------------------------


def _results(response: Reply, virtuoso: bool = False) -> QueryResult:
    """The engine's answer as pyoxigraph's objects, by the content type it sent."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    content = response.content
    if virtuoso and _BOOLEAN in content:
        content = _canonical_booleans(content, kind)
    if virtuoso and b'"bnode"' in content and kind in (RESULTS_JSON, "application/json"):
        content = _valid_blank_labels(content)
    if virtuoso and _DURATION in content and kind in (RESULTS_JSON, "application/json"):
        content = _virtuoso_durations(content)
    if kind in (RESULTS_JSON, "application/json"):
        return ox.parse_query_results(content, format=ox.QueryResultsFormat.JSON)
    if kind in (RESULTS_XML, "application/xml"):
        return ox.parse_query_results(content, format=ox.QueryResultsFormat.XML)
    if kind == RESULTS_TSV:
        return ox.parse_query_results(content, format=ox.QueryResultsFormat.TSV)
    fmt = ox.RdfFormat.from_media_type(kind) if kind else None
    if fmt is None:
        raise StoreError(f"the SPARQL server answered with an unexpected type {kind!r}")
    graph = ox.Store()
    graph.bulk_extend(
        ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph())
        for t in ox.parse(content, format=fmt)
    )
    return graph.query("CONSTRUCT WHERE { ?s ?p ?o }")


_BOOLEAN = b"http://www.w3.org/2001/XMLSchema#boolean"
_NT_BOOLEAN = re.compile(rb'"([01])"\^\^<http://www\.w3\.org/2001/XMLSchema#boolean>')


def _canonical_booleans(content: bytes, kind: str) -> bytes:
    """Virtuoso stores xsd:boolean as 0/1 and answers "0"^^xsd:boolean; use false/true.

    Without this, a boolean fact would not equal the same fact read from the files (nor
    the embedded store's), and explanations would lose track of where it is asserted.
    """
    words = {b"0": b"false", b"1": b"true"}
    if kind in (RESULTS_JSON, "application/json"):
        data = json.loads(content)
        for row in data.get("results", {}).get("bindings", []):
            for term in row.values():
                if term.get("datatype") == _BOOLEAN.decode() and term.get("value") in ("0", "1"):
                    term["value"] = words[term["value"].encode()].decode()
        return json.dumps(data).encode()
    if kind in (RESULTS_XML, "application/xml"):
        return content  # relmark asks Virtuoso for JSON results only
    return _NT_BOOLEAN.sub(lambda m: b'"' + words[m[1]] + b'"^^<' + _BOOLEAN + b">", content)


def _valid_blank_labels(content: bytes) -> bytes:
    """Virtuoso labels blank nodes ``nodeID://b10006`` in JSON results, which is not a
    blank node label: the same node keeps one valid label (``nodeID___b10006``)."""
    data = json.loads(content)
    for row in data.get("results", {}).get("bindings", []):
        for term in row.values():
            if term.get("type") == "bnode":
                term["value"] = re.sub(r"[^A-Za-z0-9_]", "_", term["value"])
    return json.dumps(data).encode()


_DURATION = b"http://www.w3.org/2001/XMLSchema#dayTimeDuration"
#: An exact number of seconds: Virtuoso's lexical form of an xsd:dayTimeDuration it made
#: from a number (``STRDT(STR(?seconds), xsd:dayTimeDuration)``). Its own durations come
#: back rounded (``2.26195e+08``): those are left alone, they cannot be restored.
_SECONDS = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _virtuoso_durations(content: bytes) -> bytes:
    """Virtuoso 7.2 keeps no durations: ``date - date`` is an xsd:integer of seconds and a
    literal typed xsd:dayTimeDuration is turned into a number (openlink/virtuoso-opensource
    #843, #1147). A query that types exact seconds xsd:dayTimeDuration (as
    queries/committed-partners-of-brand.rq does) gets the standard's canonical literal
    (``"P2618D"``) back; a number is no xsd:dayTimeDuration lexical form, so no valid
    duration is ever changed."""
    data = json.loads(content)
    for row in data.get("results", {}).get("bindings", []):
        for term in row.values():
            if term.get("datatype") == _DURATION.decode() and _SECONDS.fullmatch(term["value"]):
                term["value"] = _day_time_duration(Decimal(term["value"]))
    return json.dumps(data).encode()


def _day_time_duration(seconds: Decimal) -> str:
    """The canonical xsd:dayTimeDuration lexical form of a number of seconds."""
    sign, rest = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((int(hours), "H"), (int(minutes), "M")) if n)
    clock += f"{rest.normalize():f}S" if rest else ""
    if not days and not clock:
        return "PT0S"
    return f"{sign}P{f'{int(days)}D' if days else ''}{'T' + clock if clock else ''}"


def _raise_local_syntax_error(sparql: str) -> None:
    """Raise pyoxigraph's error for a query the engine called malformed, if pyoxigraph
    agrees: its message says where (``at line:column``), which Virtuoso's does not. The
    query is run on an empty in-memory store (never one with SERVICE: that would call out).
    """
    if re.search(r"\bSERVICE\b", masked(sparql), re.IGNORECASE):
        return
    try:
        ox.Store().query(sparql)
    except SyntaxError:
        raise
    except Exception:  # anything but a syntax error: the engine's word stands
        return


_SILENT = re.compile(r"(?<![\w:?$-])(DROP|CLEAR)(\s+)(?!SILENT\b)", re.IGNORECASE)


def _silent_drops(sparql: str) -> str:
    """``DROP``/``CLEAR`` operations made ``SILENT`` (outside strings, IRIs and comments)."""
    code = masked(sparql)
    parts, last = [], 0
    for found in _SILENT.finditer(code):
        parts.append(sparql[last : found.end(1)] + " SILENT")
        last = found.end(1)
    return "".join(parts) + sparql[last:]


_FROM = re.compile(
    r"(?<![\w:?$-])FROM\s+(?:NAMED\s+)?(?:<[^<>\s]*>|[A-Za-z_][\w.-]*:[\w.-]*|:[\w.-]*)",
    re.IGNORECASE,
)


def without_from(sparql: str) -> str:
    """The query without its ``FROM``/``FROM NAMED`` clauses (blanked, so positions stay)."""
    code = code_only(sparql)
    for found in reversed(list(_FROM.finditer(code))):
        sparql = (
            sparql[: found.start()] + " " * (found.end() - found.start()) + sparql[found.end() :]
        )
    return sparql


_SYNTAX = re.compile(r"syntax|parse error|SP030|SP031|37000", re.IGNORECASE)


def _looks_like_syntax(body: str) -> bool:
    """Virtuoso answers a malformed query with 500 and an SQL state; others with 400."""
    return bool(_SYNTAX.search(body[:500]))


def _first_lines(text: str, lines: int = 3) -> str:
    return " ".join(text.splitlines()[:lines])[:500]


# --- binding substitutions -------------------------------------------------------------------

#: An IRI where a graph's name goes (after GRAPH, INTO, TO, WITH, USING NAMED, MOVE …).
_GRAPH_IRI = re.compile(
    r"""\b(?:GRAPH|INTO|TO|WITH|USING|NAMED|MOVE|ADD|COPY|SILENT)\s+<([^<>"{}|^`\\\s]*)>""",
    re.IGNORECASE,
)


def _spelled_graphs(sparql: str) -> set[str]:
    """The graph IRIs a query or update spells out (only those: listing every IRI of a
    query that names many terms as named graphs makes Virtuoso's reply unreadable)."""
    return set(_GRAPH_IRI.findall(code_only(sparql)))


_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)


def bind_values(
    sparql: str, substitutions: Mapping[str, Term], computed_decimals: bool = False
) -> str:
    """The query with its variables bound by a ``VALUES`` block at the top of its WHERE.

    Terms are written in their N-Triples form (pyoxigraph's ``str``), never pasted as raw
    text, so a value cannot change the query's structure. A VALUES block at the start of
    the outer group binds the variables before the rest is evaluated, as pyoxigraph's
    ``substitutions`` do (a trailing VALUES would join only after any aggregation). With
    ``computed_decimals`` an xsd:decimal is bound by ``BIND(value + 0.0 AS ?name)`` there
    instead (the same value, computed: see ``Engine.computed_decimals``).
    """
    names = sorted(substitutions)
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise StoreError(f"{name!r} is not a SPARQL variable name")
        if isinstance(substitutions[name], ox.BlankNode):
            raise StoreError("a blank node cannot be bound in a query sent to a SPARQL server")
    computed = [n for n in names if computed_decimals and _is_decimal(substitutions[n])]
    constant = [n for n in names if n not in computed]
    variables = " ".join(f"?{n}" for n in constant)
    row = " ".join(_term_text(substitutions[n]) for n in constant)
    block = f" VALUES ({variables}) {{ ({row}) }} " if constant else " "
    block += "".join(f"BIND({substitutions[n]} + 0.0 AS ?{n}) " for n in computed)
    brace = _where_brace(sparql)
    if brace is None:
        return f"{sparql}\n{block.strip()}"
    return sparql[: brace + 1] + block + sparql[brace + 1 :]


@kept_for_short_texts
def _where_brace(sparql: str) -> int | None:
    """Where the query's WHERE group opens (None: it has no braces)."""
    code = masked(sparql)
    form = QUERY_FORM.search(code)
    if form is None:
        raise SyntaxError("not a SPARQL query (no SELECT, ASK, CONSTRUCT or DESCRIBE)")
    start = form.end()
    if form[1].upper() == "CONSTRUCT":
        where = _WHERE.search(code, start)
        start = where.end() if where else start
    return _outer_brace(code, start)


def _is_decimal(term: object) -> bool:
    return isinstance(term, ox.Literal) and term.datatype.value == XSD_DECIMAL


def _term_text(term: object) -> str:
    """A term in SPARQL syntax: its N-Triples form (an RDF 1.2 triple term as ``<<( … )>>``)."""
    if isinstance(term, ox.Triple):
        return f"<<( {term} )>>"
    if not isinstance(term, ox.NamedNode | ox.Literal):
        raise StoreError(f"cannot bind {term!r} in a query sent to a SPARQL server")
    return str(term)


def _outer_brace(code: str, start: int) -> int | None:
    depth = 0
    for position in range(start, len(code)):
        char = code[position]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "{" and depth == 0:
            return position
    return None


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


class RemoteReplica(ForwardedWrites, RemoteStore):
    """A serving worker's remote store (``relmark serve --workers N``): reads go to the
    engine, writes to the writer process.

    The writer counts the writes it applied in shared memory (``generation``, moved before
    it answers, and after a write that failed). What this process keeps from the engine
    (the list of graphs, the quad count, labels, class checks) is dropped when that number
    moved, so a request on any worker reads what every write answered before it wrote.
    """

    def __init__(
        self, config: RemoteConfig, generation: Callable[[], int], writer: WriteForwarder
    ) -> None:
        self._shared_generation = generation
        self._writer = writer
        self._seen = generation()
        super().__init__(config)
        self.label_cache = LookupCache(generation, config.lookup_ttl)
        self.check_cache = LookupCache(generation, config.lookup_ttl)

    @property
    def generation(self) -> int:
        """The writes the writer process has applied (for /healthz)."""
        return self._shared_generation()

    def _catch_up(self) -> None:
        moved = self._shared_generation()
        if moved != self._seen:
            self._seen = moved  # first: a write ending during the next read is seen again
            self.forget_graphs()

    def graph_names(self) -> list[str]:
        self._catch_up()
        return super().graph_names()

    def count(self) -> int:
        self._catch_up()
        return super().count()

    def _forward(self, method: str, *args: object) -> object:
        return self._writer(method, *args)[0]  # applied on the engine when this returns


__all__ = [
    "EMULATED_DEFAULT_GRAPH",
    "RemoteConfig",
    "RemoteError",
    "RemoteReplica",
    "RemoteStore",
    "RemoteUnavailable",
    "bind_values",
    "open_remote",
    "remote_config",
]
