"""Flask's JSON responses, encoded by orjson.

orjson encodes a page of a named question about ten times faster than the standard
library, a visible share of relmark's fixed cost per question in front of a SPARQL server
(benchmarks/README.md, "Figures behind choices in the code"). What orjson
would encode its own way (dates, dataclasses, ``str`` subclasses such as markup) still
goes through Flask's ``default``, so responses say the same; an indented response (debug
mode) is left to the standard library.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_NON_STR_KEYS
)


class OrjsonProvider(DefaultJSONProvider):
    """``DefaultJSONProvider`` with orjson's encoder; keys in insertion order."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.get("indent") is not None:
            return super().dumps(obj, **kwargs)
        return orjson.dumps(obj, default=self.default, option=OPTIONS).decode()
