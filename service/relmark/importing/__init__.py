"""Importing spreadsheets and CRM exports through declarative (YARRRML) mappings.

The page and the HTTP API call ``plan_import`` (a preview: rows, triples, problems by row
and column) and then ``apply_import`` (the write, all or nothing, into a named graph).
"""

from relmark.importing.engine import EngineError
from relmark.importing.mapping import Mapping, MappingError, find_mapping, load_mapping
from relmark.importing.plan import (
    ImportInputError,
    ImportPlan,
    ImportRejected,
    ImportSummary,
    Problem,
    SourceSummary,
    apply_import,
    plan_import,
    problems_text,
)
from relmark.importing.tables import SourceError, Table, read_table

__all__ = [
    "EngineError",
    "ImportInputError",
    "ImportPlan",
    "ImportRejected",
    "ImportSummary",
    "Mapping",
    "MappingError",
    "Problem",
    "SourceError",
    "SourceSummary",
    "Table",
    "apply_import",
    "find_mapping",
    "load_mapping",
    "plan_import",
    "problems_text",
    "read_table",
]
