"""SHACL validation of incoming data: shapes compiled to SPARQL, run by pyoxigraph.

Every load and every write is checked against ``ontology/shapes.ttl`` before anything is
written. The semantics are those of SHACL Core and SHACL-SPARQL constraints
(https://www.w3.org/TR/shacl/), plus SHACL-AF SPARQL targets (``sh:target`` with an
``sh:SPARQLTarget``, as pySHACL reads them with ``advanced=True``). Any construct the
compiler does not handle raises ``UnsupportedShapeError`` naming the shape when the
shapes are compiled, never later and never silently. Literal well-formedness is
pyoxigraph's (XSD lexical spaces, no whitespace collapsing), stricter than rdflib's:
``"1e3"^^xsd:decimal`` is ill-typed here, not in pySHACL.

The modules, in the order a validation uses them: ``shapes`` (reading the shapes graph),
``expressions`` and ``compile`` (constraints → SPARQL), ``plan`` (the queries and the
checks their rows name), ``view`` (the data the queries run over), ``run`` (running
them), ``report`` and ``messages`` (the outcome, worded).
"""

from relmark.shacl.compile import Shapes
from relmark.shacl.report import ValidationReport, ValidationResult
from relmark.shacl.run import SparqlSource, ValidationFailure, validate, validate_change
from relmark.shacl.shapes import ShapesError, UnsupportedShapeError
from relmark.shacl.view import Change, QuadReader, validation_store

__all__ = [
    "Change",
    "QuadReader",
    "Shapes",
    "ShapesError",
    "SparqlSource",
    "UnsupportedShapeError",
    "ValidationFailure",
    "ValidationReport",
    "ValidationResult",
    "validate",
    "validate_change",
    "validation_store",
]
