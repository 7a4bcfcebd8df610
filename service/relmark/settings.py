"""All configuration in one frozen dataclass, read from the environment in one place.

CLI flags override environment variables; tests build ``Settings`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict, Unpack

from relmark.memory_bound import MINIMUM, describe, parse_size
from relmark.vocab import ONTOLOGY_DIR, VENDOR_DIR

#: Bind addresses where reads are open unless RELMARK_PUBLIC_READS=0 says otherwise.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: How long a remote store keeps look-ups when nothing is written through relmark (seconds).
LOOKUP_TTL = 60.0


@dataclass(frozen=True)
class Settings:
    store: str = "data/store"
    token: str | None = None
    query_timeout: float = 30.0
    max_body_bytes: int = 64 * 1024 * 1024
    max_result_rows: int = 100_000
    ontology_dir: Path = field(default=ONTOLOGY_DIR)
    # Serving workers read from an in-memory copy of the store up to this many quads
    # (``relmark.stores.memory_copy``; 0: always from disk).
    memory_copy_quads: int = 5_000_000
    # A remote store (``store = sparql+http://…``): where updates and the Graph Store go
    # (default: derived from the engine), credentials, and the engine's dialect.
    update_url: str | None = None
    gsp_url: str | None = None
    remote_user: str | None = None
    remote_password: str | None = None
    remote_bearer: str | None = None
    remote_engine: str | None = None
    # How long labels and class checks read from a remote store are kept while nothing is
    # written through relmark (``relmark.stores.remote.lookup_cache``; 0: never kept).
    lookup_ttl: float = LOOKUP_TTL
    # Access control (``relmark.web.auth``): the address ``relmark serve`` binds (reads are
    # open by default only on 127.0.0.1/localhost/::1), an explicit choice to open reads
    # (None: decided by the address), the origins allowed cross-origin (None: ``*`` when
    # reads are open, none otherwise) and the token file (None: ``<store>.tokens.json``).
    bind_host: str = "127.0.0.1"
    public_reads: bool | None = None
    cors_origins: tuple[str, ...] | None = None
    token_file: str | None = None
    # Resident memory each serving worker and what-if helper may use, in bytes
    # (``relmark.memory_bound``; None: 3/4 of physical memory divided among the workers;
    # 0: no bound). A query that passes it gets 503 and its worker is replaced.
    worker_memory: int | None = None
    # What-if (``POST /api/classify``): seconds its helper may take (None: the query
    # timeout), and the most triples a hypothetical record may hold (413 beyond).
    whatif_timeout: float | None = None
    whatif_max_triples: int = 10_000
    # What a SPARQL text may be before it is parsed (``relmark.sparql.guard``): endpoints
    # SERVICE and LOAD may fetch (IRI prefixes; empty: none), nesting depth, size, and
    # the longest IRI a write may carry (also in RDF bodies, ``relmark.rdf_input``).
    service_allow: tuple[str, ...] = ()
    max_sparql_depth: int = 64
    max_sparql_bytes: int = 16 * 1024 * 1024
    max_iri_length: int = 4096
    # Where the pages' npm files are (CodeMirror, cytoscape.js): the copies an installed
    # relmark carries, or node_modules/ in a checkout (``relmark.vocab.VENDOR_DIR``).
    vendor_dir: Path = field(default=VENDOR_DIR)
    # Webhooks (``relmark.history.webhooks``): the URL prefixes subscriptions may name (which
    # hosts the server may call is a deployment decision; default: the loopback only), and
    # the first pause before a failed delivery is retried (seconds; doubled each time).
    webhook_allow: tuple[str, ...] = (
        "http://127.0.0.1",
        "https://127.0.0.1",
        "http://localhost",
        "https://localhost",
        "http://[::1]",
        "https://[::1]",
    )
    webhook_backoff: float = 1.0

    @property
    def reads_public(self) -> bool:
        """Whether anyone may read without a token: RELMARK_PUBLIC_READS when set, else
        only while bound to a loopback address (``relmark.web.auth``)."""
        if self.public_reads is not None:
            return self.public_reads
        return self.bind_host.strip().lower() in LOCAL_HOSTS

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Unpack[SettingsFields]
    ) -> Settings:
        """Settings from ``RELMARK_*`` variables, then explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: SettingsFields = {}
        if "RELMARK_STORE" in env:
            values["store"] = env["RELMARK_STORE"]
        if env.get("RELMARK_TOKEN"):
            values["token"] = env["RELMARK_TOKEN"]
        if "RELMARK_QUERY_TIMEOUT" in env:
            values["query_timeout"] = float(env["RELMARK_QUERY_TIMEOUT"])
        if "RELMARK_MAX_BODY" in env:
            values["max_body_bytes"] = int(env["RELMARK_MAX_BODY"])
        if "RELMARK_MAX_ROWS" in env:
            values["max_result_rows"] = int(env["RELMARK_MAX_ROWS"])
        if "RELMARK_MEMORY_COPY" in env:
            values["memory_copy_quads"] = int(env["RELMARK_MEMORY_COPY"])
        if "RELMARK_LOOKUP_TTL" in env:
            values["lookup_ttl"] = float(env["RELMARK_LOOKUP_TTL"])
        if "RELMARK_ONTOLOGY" in env:
            values["ontology_dir"] = Path(env["RELMARK_ONTOLOGY"])
        for name, variable in _REMOTE_VARIABLES:
            if env.get(variable):
                values[name] = env[variable]
        if env.get("RELMARK_PUBLIC_READS", "").strip():
            values["public_reads"] = _flag("RELMARK_PUBLIC_READS", env["RELMARK_PUBLIC_READS"])
        if "RELMARK_CORS_ORIGINS" in env:
            origins = (o.strip().rstrip("/") for o in env["RELMARK_CORS_ORIGINS"].split(","))
            values["cors_origins"] = tuple(o for o in origins if o)
        if env.get("RELMARK_TOKEN_FILE"):
            values["token_file"] = env["RELMARK_TOKEN_FILE"]
        if env.get("RELMARK_WORKER_MEMORY"):
            bound = parse_size(env["RELMARK_WORKER_MEMORY"])
            if 0 < bound < MINIMUM:  # a worker at rest could pass it: retired in a loop
                raise ValueError(
                    f"RELMARK_WORKER_MEMORY is 0 (no bound) or at least {describe(MINIMUM)}"
                )
            values["worker_memory"] = bound
        if env.get("RELMARK_WHATIF_TIMEOUT"):
            values["whatif_timeout"] = float(env["RELMARK_WHATIF_TIMEOUT"])
        if env.get("RELMARK_WHATIF_MAX_TRIPLES"):
            values["whatif_max_triples"] = int(env["RELMARK_WHATIF_MAX_TRIPLES"])
        if env.get("RELMARK_SERVICE_ALLOW"):
            allow = env["RELMARK_SERVICE_ALLOW"].replace(",", " ").split()
            values["service_allow"] = tuple(allow)
        if "RELMARK_MAX_SPARQL_DEPTH" in env:
            values["max_sparql_depth"] = int(env["RELMARK_MAX_SPARQL_DEPTH"])
        if "RELMARK_MAX_SPARQL_BYTES" in env:
            values["max_sparql_bytes"] = int(env["RELMARK_MAX_SPARQL_BYTES"])
        if "RELMARK_MAX_IRI_LENGTH" in env:
            values["max_iri_length"] = int(env["RELMARK_MAX_IRI_LENGTH"])
        if env.get("RELMARK_VENDOR_DIR"):
            values["vendor_dir"] = Path(env["RELMARK_VENDOR_DIR"])
        if env.get("RELMARK_WEBHOOK_ALLOW"):
            hooks = env["RELMARK_WEBHOOK_ALLOW"].replace(",", " ").split()
            values["webhook_allow"] = tuple(hooks)
        if env.get("RELMARK_WEBHOOK_BACKOFF"):
            values["webhook_backoff"] = float(env["RELMARK_WEBHOOK_BACKOFF"])
        values.update(overrides)
        return cls(**values)


class SettingsFields(TypedDict, total=False):
    """Any of ``Settings``' fields by name: what ``from_env`` reads and a caller overrides."""

    store: str
    token: str | None
    query_timeout: float
    max_body_bytes: int
    max_result_rows: int
    ontology_dir: Path
    memory_copy_quads: int
    update_url: str | None
    gsp_url: str | None
    remote_user: str | None
    remote_password: str | None
    remote_bearer: str | None
    remote_engine: str | None
    lookup_ttl: float
    bind_host: str
    public_reads: bool | None
    cors_origins: tuple[str, ...] | None
    token_file: str | None
    worker_memory: int | None
    whatif_timeout: float | None
    whatif_max_triples: int
    service_allow: tuple[str, ...]
    max_sparql_depth: int
    max_sparql_bytes: int
    max_iri_length: int
    vendor_dir: Path
    webhook_allow: tuple[str, ...]
    webhook_backoff: float


_RemoteField = Literal[
    "update_url",
    "gsp_url",
    "remote_user",
    "remote_password",
    "remote_bearer",
    "remote_engine",
]
#: The remote store's settings, each read as is from its variable.
_REMOTE_VARIABLES: tuple[tuple[_RemoteField, str], ...] = (
    ("update_url", "RELMARK_UPDATE_URL"),
    ("gsp_url", "RELMARK_GSP_URL"),
    ("remote_user", "RELMARK_REMOTE_USER"),
    ("remote_password", "RELMARK_REMOTE_PASSWORD"),
    ("remote_bearer", "RELMARK_REMOTE_BEARER"),
    ("remote_engine", "RELMARK_REMOTE_ENGINE"),
)


def _flag(name: str, text: str) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off, anything else is an error."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0 (true/false), not {text!r}")
