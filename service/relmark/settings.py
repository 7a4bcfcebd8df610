"""All configuration in one frozen dataclass, read from the environment in one place.

CLI flags override environment variables; tests build ``Settings`` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from relmark.vocab import ONTOLOGY_DIR


@dataclass(frozen=True)
class Settings:
    store: str = "data/store"
    token: str | None = None
    query_timeout: float = 30.0
    max_body_bytes: int = 64 * 1024 * 1024
    max_result_rows: int = 100_000
    ontology_dir: Path = field(default=ONTOLOGY_DIR)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``RELMARK_*`` variables, then explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
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
        if "RELMARK_ONTOLOGY" in env:
            values["ontology_dir"] = Path(env["RELMARK_ONTOLOGY"])
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
