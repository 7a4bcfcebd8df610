"""Why not: which conditions of each rule concluding a class hold for a resource, and which not.

GraphDB and RDFox explain what *was* inferred; a marketer also asks why a customer is *not*
an Advocate and what would change that. For every rule concluding the
class, the rule's WHERE is split into conditions (``conditions``) and they are tried in
order, each together with every condition already met (a greedy search, ``evaluator``).
A condition that fails is reported with the numbers behind it ("satisfaction level 0.45
is below the threshold 0.6 (rm:SatisfactionThreshold)") and, where it is a missing fact,
what one more of it would do ("one referral more would make this customer relationship
advocate"). Conditions that depend on a failed one are listed as not checked, so nothing
is claimed about them. Candidates are sorted by how few conditions they miss (``answer``).
"""

from relmark.reasoning.whynot.answer import rules_concluding, why_not, why_not_text

__all__ = ["rules_concluding", "why_not", "why_not_text"]
