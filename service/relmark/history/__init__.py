"""Relationships over time: the classification history, as-of answers and erasure.

Every change of an inferred class membership (``rdf:type`` in ``urn:relmark:inferred``
and the firm-relative market links ``rm:in…MarketOf``) becomes an event node in
``urn:relmark:history``, taken from the rule engine's own delta (``RunSummary.delta``), so
recording costs one small update per write (``record``). The events answer "which classes
did this resource have on that date, and which write put it there" (``read``), and erasure
removes a person from the data, the inferences and the history alike (``forget``).

The package sits above ``reasoning`` (it wraps ``refresh_inferences`` and reads what it
returns) and below ``loading``, which records its writes and refuses erased identifiers.
Everything goes through the Store protocol as SPARQL, so it works on a remote store too.
"""
