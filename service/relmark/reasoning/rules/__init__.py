"""The rule engine: SPARQL CONSTRUCT rules read from files and applied to a fixpoint.

- ``model``: what a parsed rule is (only data, so every other part can name it);
- ``parse``: rule files into ``Rule`` objects;
- ``evaluate``: one rule's derivations, the same for every engine;
- ``fixpoint``: a rule set applied until nothing new follows;
- ``inputs``: the facts the rules read, each once, and where each is stated;
- ``materialise``: a full run and its all-or-none write;
- ``provenance``: the record of which derivation concluded each inferred triple.
"""

from relmark.reasoning.rules.inputs import NOT_RULE_INPUT
from relmark.reasoning.rules.materialise import RunSummary, materialise
from relmark.reasoning.rules.model import Rule, RuleError
from relmark.reasoning.rules.parse import RULES_DIR, load_rules, parse_rule

__all__ = [
    "NOT_RULE_INPUT",
    "RULES_DIR",
    "Rule",
    "RuleError",
    "RunSummary",
    "load_rules",
    "materialise",
    "parse_rule",
]
