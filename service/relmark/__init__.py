"""relmark: a knowledge-graph and ontology service for relationship marketing."""

__version__ = "0.1.0"
