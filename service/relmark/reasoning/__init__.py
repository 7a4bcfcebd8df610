"""Reasoning over the relmark ontology: OWL consistency (owl.py); rules come later."""
