"""The IRIs the history writes: relmark's terms (declared in rm.ttl) and PROV-O, OWL-Time
and DPV ones, so no module spells them itself."""

from __future__ import annotations

from relmark.vocab import RM

PROV = "http://www.w3.org/ns/prov#"
TIME = "http://www.w3.org/2006/time#"
DPV = "https://w3id.org/dpv#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"

#: GDPR Art. 17, the default legal basis of an erasure (DPV's EU GDPR extension).
GDPR_ART_17 = "https://w3id.org/dpv/legal/eu/gdpr#A17"

DATA_WRITE = RM + "DataWrite"
ENTERED = RM + "MembershipEntered"
LEFT = RM + "MembershipLeft"
EVENT = RM + "ClassificationEvent"
ERASURE_RECEIPT = RM + "ErasureReceipt"

EVENT_RESOURCE = RM + "eventResource"
EVENT_CLASS = RM + "eventClass"
EVENT_PROPERTY = RM + "eventProperty"
EVENT_FIRM = RM + "eventFirm"
BY_RULE = RM + "byRule"
WRITE_KIND = RM + "writeKind"
REQUESTED_BY = RM + "requestedBy"
ERASED_STATEMENTS = RM + "erasedStatements"
ERASED_HASH = RM + "erasedIdentifierHash"

#: the firm-relative market links: rm:inMarketOf's sub-properties (rm:in…MarketOf)
MARKET_LINK_PREFIX = RM + "in"
MARKET_LINK_SUFFIX = "MarketOf"


def is_market_link(predicate: str) -> bool:
    """Whether ``predicate`` is one of the firm-relative market memberships."""
    return predicate.startswith(MARKET_LINK_PREFIX) and predicate.endswith(MARKET_LINK_SUFFIX)
