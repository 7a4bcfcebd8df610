"""Incremental maintenance: after a write, re-derive only what the changed quads can reach.

For each (rule, focus) a change reaches (``reach``), the rule is evaluated again with the
focus bound (the same ``rules.evaluate.evaluate`` as a full run), the old derivations
(``records``) are replaced by the new ones, and each conclusion either of them names is
inferred exactly when some derivation still supports it and no input graph asserts it
(``rederive``). The inferred triples that changed are the next round's changes, until
nothing changes (``update``): rules that read other rules' conclusions are reached that
way. Each round is at most one SPARQL update (``write``: only the record lines that
differ), so readers never see half of one; the result is the graph a full run would write
(the tests compare them).

A round's cost is its number of queries, not their answers, so: each distinct query runs
once per round (``reads``), what is asked about many triples is one query with a VALUES
table, rule queries that no unread graph can answer read the union of all graphs (one
index instead of one per graph), and a rule whose sub-select groups by the focus gets the
focus inside the sub-select too (``rule_index``).
"""

from relmark.reasoning.incremental.update import update_inferences

__all__ = ["update_inferences"]
