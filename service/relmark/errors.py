"""The typed errors of the domain that more than one layer meets.

They say what went wrong in relmark's own terms, never which HTTP status it is: the web
maps each to a status in one place (``relmark.web.errors.register``) and the command line
to an exit code, so neither has to know which back end or tool raised it. Errors that only
one module raises and only its callers handle stay beside that module (``LoadError`` in
``loading``, ``StoreError`` in ``stores.base``).
"""

from __future__ import annotations


class QueryTimeout(Exception):
    """A query did not answer within the allowed time (RELMARK_QUERY_TIMEOUT).

    ``seconds`` is that time where the raiser knows it (a remote engine's read); otherwise
    the caller that set the timeout knows it.
    """

    seconds: float | None = None


class BackendFailed(Exception):
    """The store's back-end server refused or failed a request; ``backend`` names it.

    A category, not a concrete error: a back end's own errors derive from it, so callers
    above ``stores`` can report them without importing that back end.
    """

    backend: str | None = None


class BackendUnavailable(BackendFailed):
    """The back-end server cannot answer now (down, refusing, or too slow): retry later."""


class Busy(Exception):
    """Every slot for this kind of work is taken; ``retry_after`` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple:  # copied per raise (``execution``) and pickled: same error
        return type(self), (str(self), self.retry_after)
