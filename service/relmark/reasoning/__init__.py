"""Reasoning over the relmark ontology and data.

``rules/`` infers classes with SPARQL CONSTRUCT rules and records why (``provenance``);
``incremental/`` and ``maintain`` keep those inferences current after each write;
``explain``, ``whynot`` and ``whatif`` answer why a resource is, or is not, in a class and
what a change would do; ``consistency`` and ``owl_reasoner`` check the ontology with OWL.
"""
