"""HTTP to a SPARQL server: one urllib3 pool, reads retried, each thread's deadline kept.

One client, urllib3 (the library ``requests`` itself sits on), used through its public
API: a ``PoolManager`` (a ``ProxyManager`` where the environment names a proxy for the
URL) keeps connections alive across requests, so a query costs one round trip and
little CPU of ours, and follows redirects itself (a ``307`` keeps the POST and its body;
credentials are not sent on to another host). Proxies and ``no_proxy`` come from the
environment as every HTTP client reads them; a CA bundle from ``REQUESTS_CA_BUNDLE`` or
``CURL_CA_BUNDLE``, else the system's trust store.

Reads are retried on connection errors (they are idempotent); writes never are. A read
that does not answer in time is a ``RemoteTimeout``; a server that cannot be reached is
``RemoteUnavailable`` (the HTTP layer answers 503 naming the back end).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import urllib3

from relmark.settings import LOOKUP_TTL
from relmark.stores.base import RemoteTimeout, RemoteUnavailable, StoreError

#: Read attempts on a connection error (reads only: a write is never sent twice).
READ_ATTEMPTS = 3
#: Writes (loads, MOVE, materialisation) may take much longer than a query.
WRITE_TIMEOUT = 600.0
#: Redirects followed per request.
MAX_REDIRECTS = 10
#: Longest wait for a connection, whatever the request's timeout.
CONNECT_TIMEOUT = 5.0

#: Query-string or form parameters: a mapping, or pairs when a name repeats.
Parameters = Mapping[str, str] | Sequence[tuple[str, str]]


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


@dataclass(frozen=True)
class Reply:
    """A server's reply, read whole."""

    status_code: int
    headers: Mapping[str, str]  # urllib3's HTTPHeaderDict: case-insensitive
    content: bytes

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``http_proxy``, ``no_proxy``, …)."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _timed_out_connecting(cause: BaseException | None) -> bool:
    # (urllib3's NewConnectionError is a ConnectTimeoutError too: refused is not slow)
    return isinstance(cause, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        cause, urllib3.exceptions.NewConnectionError
    )


class Transport:
    """The HTTP side of a remote store: requests, their timeouts, and their failures.

    ``backend()`` names the server in error messages (it may change once the engine is
    known). Thread-safe: the pools are urllib3's, the deadlines per thread.
    """

    def __init__(self, config: RemoteConfig, backend: Callable[[], str]) -> None:
        self.config = config
        self._backend = backend
        self._headers = urllib3.util.make_headers(accept_encoding=True, user_agent="relmark")
        if config.bearer:
            self._headers["Authorization"] = f"Bearer {config.bearer}"
        elif config.user:
            basic = f"{config.user}:{config.password or ''}"
            self._headers.update(urllib3.util.make_headers(basic_auth=basic))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._options: dict[str, object] = {"num_pools": 4, "maxsize": 32}
        if bundle:
            self._options["ca_certs"] = bundle
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._by_url: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._deadlines = threading.local()  # each request thread's (see ``deadline``)

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The pool manager for ``url``: direct, or through the proxy named for it."""
        manager = self._by_url.get(url)
        if manager is not None:
            return manager
        proxy = _proxy_for(url)
        with self._lock:
            manager = self._managers.get(proxy)
            if manager is None:
                options = self._options
                manager = (
                    urllib3.ProxyManager(proxy, **options)  # type: ignore[arg-type]
                    if proxy
                    else urllib3.PoolManager(**options)  # type: ignore[arg-type]
                )
                self._managers[proxy] = manager
            self._by_url[url] = manager
        return manager

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()

    # --- requests -------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        url: str,
        timeout: float,
        *,
        params: Parameters | None = None,
        body: bytes | None = None,
        form: Parameters | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request, never retried; ``form`` is sent as the body, form-encoded."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        sent = {**self._headers, **(headers or {})}
        if form is not None:
            body = urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            reply = self._manager(url).urlopen(
                method,
                url,
                body=body,
                headers=sent,
                timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout),
                # redirects followed; nothing retried here (``read`` retries, ``write`` never),
                # and a 503 with Retry-After is the engine's answer, not a retry
                retries=urllib3.Retry(
                    total=None,
                    connect=0,
                    read=0,
                    status=0,
                    other=0,
                    redirect=MAX_REDIRECTS,
                    respect_retry_after_header=False,
                    raise_on_status=False,
                ),
                redirect=True,
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as error:
            cause = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
            backend = self._backend()
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError) or _timed_out_connecting(
                cause
            ):
                raise RemoteUnavailable(
                    f"the SPARQL server ({backend}) did not answer within {timeout:g} s", backend
                ) from cause
            raise RemoteUnavailable(
                f"cannot reach the SPARQL server ({backend}): {cause}", backend
            ) from cause
        return Reply(reply.status, reply.headers, reply.data)

    def read(self, method: str, url: str, **request: object) -> Reply:
        """A read, retried on connection errors (never on timeouts: the query was slow),
        within this thread's deadline."""
        for attempt in range(READ_ATTEMPTS):
            timeout = self.read_timeout()  # (none left: RemoteTimeout, not retried)
            try:
                return self.send(method, url, timeout, **request)  # type: ignore[arg-type]
            except RemoteUnavailable as error:
                cause = error.__cause__
                if isinstance(cause, urllib3.exceptions.ReadTimeoutError):  # connected, then none
                    raise RemoteTimeout(str(error), error.backend, self.config.timeout) from error
                if _timed_out_connecting(cause) or attempt + 1 == READ_ATTEMPTS:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def write(self, method: str, url: str, **request: object) -> Reply:
        """A write: never retried (it may have been applied), with a long timeout."""
        timeout = max(WRITE_TIMEOUT, self.config.timeout)
        return self.send(method, url, timeout, **request)  # type: ignore[arg-type]

    # --- deadlines ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Reads on this thread, inside the block, end ``seconds`` from now at the latest.

        How a request's query timeout is kept on a remote store without handing its work to
        another thread: every request to the server gets what is left of the time as its
        HTTP timeout, and a read begun with none left is a ``RemoteTimeout``.
        """
        outer = getattr(self._deadlines, "at", None)
        self._deadlines.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._deadlines.at = outer

    def read_timeout(self) -> float:
        """The configured timeout, or what is left of this thread's ``deadline``."""
        at = getattr(self._deadlines, "at", None)
        if at is None:
            return self.config.timeout
        left = min(self.config.timeout, at - time.monotonic())
        if left <= 0:
            backend = self._backend()
            raise RemoteTimeout(
                f"the SPARQL server ({backend}) did not answer within the query timeout",
                backend,
                self.config.timeout,
            )
        return left
