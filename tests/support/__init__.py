"""Helpers the test suites share (importable as ``support.…``: pytest's ``pythonpath``)."""
