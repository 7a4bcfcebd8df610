"""An independent oracle for the rule engine: the data classified a second time by OWL.

Tests and benchmarks only (never the service): ``classify_with_owl`` classifies with OWL
definitions of the classes the SPARQL rules infer, reasoned by HermiT through owlready2;
the two answers must agree (tests/unit/test_owl_agreement.py). How OWL's reading is brought in
line with the rules' is explained where the oracle starts, below.
"""

from __future__ import annotations

import datetime
import math
import re
import types
from collections.abc import Callable, Iterable
from decimal import Decimal

import owlready2
import rdflib

from relmark.reasoning.owl_reasoner import load_world
from relmark.vocab import RM

CHECK = "https://w3id.org/relmark/owl-check#"
RDF_TYPE = rdflib.RDF.type

#: The rm: classes classify_with_owl models, i.e. every class a rule concludes, in the
#: order of rm.ttl (markets and roles, accounts, the ladder, promises, Fournier forms,
#: commitment and trust).
EXPRESSIBLE: tuple[str, ...] = tuple(
    RM + name
    for name in (
        "CustomerMarket",
        "ReferralMarket",
        "StrongReferralMarket",
        "SupplierMarket",
        "RecruitmentMarket",
        "InfluenceMarket",
        "InternalMarket",
        "Customer",
        "Supplier",
        "Employee",
        "ReferralSource",
        "Influencer",
        "KeyAccount",
        "GlobalAccount",
        "Prospect",
        "Purchaser",
        "Client",
        "Supporter",
        "Advocate",
        "Partner",
        "LoyalCustomer",
        "BrokenPromise",
        "KeptPromise",
        "UnenabledPromise",
        "ArrangedMarriage",
        "BestFriendship",
        "CasualFriendship",
        "ChildhoodFriendship",
        "CommittedPartnership",
        "CompartmentalizedFriendship",
        "Courtship",
        "Dependency",
        "Enmity",
        "Enslavement",
        "Fling",
        "Kinship",
        "MarriageOfConvenience",
        "Rebound",
        "SecretAffair",
        "CommittedTrustingRelationship",
        "AtRiskRelationship",
    )
)

#: What the rules infer that the check does not compare, and why. Every rm: *class* a rule
#: concludes is in EXPRESSIBLE: once the world is closed and names are unique (see above),
#: OWL can state each of them. The rules also infer relations, which are not compared.
NOT_COMPARED: dict[str, str] = {
    RM + name: "a relation, not a class: classify_with_owl compares class memberships; the "
    "relations the roles and key accounts read are derived under CHECK names (SWRL) and "
    "checked through those classes"
    for name in (
        "inMarketOf",
        "inCustomerMarketOf",
        "inReferralMarketOf",
        "inSupplierMarketOf",
        "inRecruitmentMarketOf",
        "inInfluenceMarketOf",
        "inInternalMarketOf",
    )
}


class OwlCheckError(Exception):
    """The oracle cannot be built: a threshold, term or class it needs is missing."""


#: The loyalty-ladder classes, reasoned in runs of their own, in this order and grouping.
#: Their closed-world definitions slow down HermiT's realisation of every other class in
#: the same world (each possible instance is checked against the whole ABox, closures
#: included): all 41 classes in one run took 3 to 8 minutes on the demo data, these runs
#: plus one for the rest take well under a minute.
LADDER_RUNS: tuple[tuple[str, ...], ...] = (
    ("Prospect", "Advocate", "Partner"),
    ("Purchaser",),
    ("Client", "Supporter"),
    # after the stages it reads; its closures and date facets stay out of the last run
    ("LoyalCustomer",),
)


def classify_with_owl(
    graph: rdflib.Graph, config: rdflib.Graph, classes: Iterable[str] | None = None
) -> dict[str, set[str]]:
    """Classify ``graph`` (ontology + data) with OWL definitions of the rules' classes.

    Thresholds are read from ``config``. Returns, for each class of ``classes`` (default:
    all of EXPRESSIBLE), the IRIs of its members: those HermiT puts in the class's OWL
    definition plus those ``graph`` asserts in it. The ladder stages are reasoned first,
    in LADDER_RUNS, each run in a fresh owlready2 world (rm:LoyalCustomer last among them:
    it reads the stages found before, as its rule reads the stage types the other rules
    inferred); the other classes in one last run.
    """
    wanted = [_local(iri) for iri in (EXPRESSIBLE if classes is None else classes)]
    unknown = [name for name in wanted if RM + name not in EXPRESSIBLE]
    if unknown:
        raise OwlCheckError(f"no OWL definition for {', '.join('rm:' + n for n in unknown)}")
    asserted = graph + config
    thresholds = _thresholds(config)
    needed = set(wanted)
    if "LoyalCustomer" in needed:
        needed |= set(_loyal_stages(asserted))
    laddered = {name for run in LADDER_RUNS for name in run}
    rest = [name for name in map(_local, EXPRESSIBLE) if name in needed - laddered]
    runs = [*([name for name in run if name in needed] for run in LADDER_RUNS), rest]
    found: dict[str, set[str]] = {}
    for run in runs:
        if run:
            found.update(_reason(asserted, thresholds, run, found))
    answer: dict[str, set[str]] = {}
    for name in wanted:
        asserted_members = asserted.subjects(RDF_TYPE, rdflib.URIRef(RM + name))
        answer[RM + name] = found[name] | {
            str(s) for s in asserted_members if isinstance(s, rdflib.URIRef)
        }
    return answer


def _local(iri: str) -> str:
    return iri.removeprefix(RM)


def _reason(
    graph: rdflib.Graph, thresholds: dict[str, str], names: list[str], found: dict
) -> dict[str, set[str]]:
    """One HermiT run: the OWL definitions of ``names`` in a fresh world holding ``graph``;
    classes already in ``found`` enter it as the members found for them."""
    world = load_world(graph)
    try:
        oracle = _Oracle(world, graph, thresholds, found)
        built = {name: oracle.build(name) for name in names}
        oracle.finish()
        with oracle.check:
            owlready2.sync_reasoner(world, infer_property_values=False, debug=0)
        return {
            name: {individual.iri for individual in cls.instances()} for name, cls in built.items()
        }
    finally:
        world.close()


def _thresholds(config: rdflib.Graph) -> dict[str, str]:
    """rm:thresholdValue of each threshold in ``config``, by local name, as decimal text."""
    values: dict[str, str] = {}
    for threshold, value in config.subject_objects(rdflib.URIRef(RM + "thresholdValue")):
        if isinstance(threshold, rdflib.URIRef) and str(threshold).startswith(RM):
            values[str(threshold).removeprefix(RM)] = str(value)
    return values


_BUILDERS: dict[str, Callable[[_Oracle], owlready2.ThingClass]] = {}


def _models(name: str) -> Callable[[Callable[[_Oracle], owlready2.ThingClass]], Callable]:
    """Register the function that builds the OWL definition of ``rm:name``."""

    def register(function: Callable[[_Oracle], owlready2.ThingClass]) -> Callable:
        _BUILDERS[name] = function
        return function

    return register


class _Oracle:
    """The CHECK ontology under construction: definitions, closures, unique names."""

    def __init__(
        self,
        world: owlready2.World,
        graph: rdflib.Graph,
        thresholds: dict[str, str],
        found: dict[str, set[str]] | None = None,
    ) -> None:
        self.world = world
        self.graph = graph
        self.thresholds = thresholds
        self.found = found or {}
        self.check = world.get_ontology(CHECK)
        self.built: dict[str, owlready2.ThingClass] = {}
        self.helpers: dict[str, object] = {}
        self.closed: set[tuple[str, str]] = set()
        self.distinct: dict[str, owlready2.Thing] = {}
        self.markers: dict[str, owlready2.ThingClass] = {}

    # --- terms ------------------------------------------------------------------------------
    def rm(self, name: str) -> object:
        entity = self.world[RM + name]
        if entity is None:
            raise OwlCheckError(f"rm:{name} is not in the ontology")
        return entity

    def individual(self, iri: str) -> owlready2.Thing:
        entity = self.world[iri]
        if not isinstance(entity, owlready2.Thing):
            raise OwlCheckError(f"{iri} is not an individual of the data")
        return entity

    def _iris(self, nodes: Iterable[rdflib.term.Node]) -> list[str]:
        return sorted({str(n) for n in nodes if isinstance(n, rdflib.URIRef)})

    def subjects(self, prop: str) -> list[owlready2.Thing]:
        """The individuals asserted with ``rm:prop``, in IRI order."""
        iris = self._iris(self.graph.subjects(rdflib.URIRef(RM + prop), None))
        return [self.individual(iri) for iri in iris]

    def objects(self, prop: str, of: Iterable[owlready2.Thing] | None = None) -> list:
        """The individuals ``rm:prop`` points to (from ``of`` only, if given), in IRI order."""
        predicate = rdflib.URIRef(RM + prop)
        if of is None:
            nodes = self.graph.objects(None, predicate)
        else:
            nodes = (o for s in of for o in self.graph.objects(rdflib.URIRef(s.iri), predicate))
        return [self.individual(iri) for iri in self._iris(nodes)]

    def subjects_of_family(self, prop: object) -> list[owlready2.Thing]:
        """The individuals asserted with ``prop`` or with one of its sub-properties."""
        nodes = (
            s for p in prop.descendants() for s in self.graph.subjects(rdflib.URIRef(p.iri), None)
        )
        return [self.individual(iri) for iri in self._iris(nodes)]

    def instances(self, cls: str) -> list[owlready2.Thing]:
        """The individuals asserted in ``rm:cls``."""
        iris = self._iris(self.graph.subjects(RDF_TYPE, rdflib.URIRef(RM + cls)))
        return [self.individual(iri) for iri in iris]

    def theta(self, name: str) -> str:
        if name not in self.thresholds:
            raise OwlCheckError(f"the config has no rm:thresholdValue for rm:{name}")
        return self.thresholds[name]

    def at_least(self, prop: str, threshold: str) -> object:
        """``rm:prop some xsd:decimal[>= θ]``: some value at or above the threshold."""
        facet = owlready2.ConstrainedDatatype(float, min_inclusive=self.theta(threshold))
        return self.rm(prop).some(facet)

    def below(self, prop: str, threshold: str) -> object:
        """``rm:prop some xsd:decimal[< θ]``: some value below the threshold."""
        facet = owlready2.ConstrainedDatatype(float, max_exclusive=self.theta(threshold))
        return self.rm(prop).some(facet)

    def signed(self, prop: str, positive: bool) -> object:
        """Some value above zero (``positive``) or below it: a sign, not a threshold."""
        bound = {"min_exclusive": "0"} if positive else {"max_exclusive": "0"}
        return self.rm(prop).some(owlready2.ConstrainedDatatype(float, **bound))

    # --- CHECK entities ---------------------------------------------------------------------
    def build(self, name: str) -> owlready2.ThingClass:
        """The CHECK class for ``rm:name`` (built once, with what it depends on)."""
        if name not in self.built:
            if name in self.found:
                self.built[name] = self.primitive(name)
                for iri in sorted(self.found[name]):
                    self.individual(iri).is_a.append(self.built[name])
            elif name in _BUILDERS:
                with self.check:
                    self.built[name] = _BUILDERS[name](self)
            else:
                raise OwlCheckError(f"no OWL definition for rm:{name}")
        return self.built[name]

    def defined(self, name: str, definition: object) -> owlready2.ThingClass:
        """A CHECK class equivalent to ``definition``."""
        with self.check:
            cls = types.new_class(name, (owlready2.Thing,))
            cls.equivalent_to.append(definition)
        return cls

    def primitive(self, name: str) -> owlready2.ThingClass:
        """A CHECK class with no definition: SWRL rules put individuals in it."""
        if name not in self.helpers:
            with self.check:
                self.helpers[name] = types.new_class(name, (owlready2.Thing,))
        return self.helpers[name]

    def helper_class(self, name: str, definition: object) -> owlready2.ThingClass:
        """A named helper class (for SWRL atoms), defined once."""
        if name not in self.helpers:
            self.helpers[name] = self.defined(name, definition)
        return self.helpers[name]

    def relation(self, name: str, inverse_of: str | None = None, sub: str | None = None):
        """A CHECK object property: the inverse of ``rm:inverse_of``, or a super-property
        of ``rm:sub`` (so asserted rm: values count), or a plain one for SWRL to fill."""
        if name not in self.helpers:
            with self.check:
                prop = types.new_class(name, (owlready2.ObjectProperty,))
                if inverse_of:
                    prop.inverse_property = self.rm(inverse_of)
                if sub:
                    self.rm(sub).is_a.append(prop)
            self.helpers[name] = prop
        return self.helpers[name]

    def swrl(self, body: list[tuple], head: list[tuple]) -> None:
        """A DL-safe SWRL rule; atoms are (class or property or "differentFrom", *variables)."""
        with self.check:
            rule = owlready2.Imp()
            rule.body = [self._atom(rule, atom) for atom in body]
            rule.head = [self._atom(rule, atom) for atom in head]

    def _atom(self, rule: owlready2.Imp, atom: tuple) -> object:
        predicate, *arguments = atom
        if predicate == "differentFrom":
            made = owlready2.rule.DifferentIndividualsAtom()
        elif isinstance(predicate, owlready2.ThingClass):
            made = owlready2.rule.ClassAtom(class_predicate=predicate)
        elif isinstance(predicate, owlready2.DataPropertyClass):
            made = owlready2.rule.DatavaluedPropertyAtom(property_predicate=predicate)
        else:
            made = owlready2.rule.IndividualPropertyAtom(property_predicate=predicate)
        made.arguments = [rule.get_variable("?" + name) for name in arguments]
        return made

    # --- closing the world ------------------------------------------------------------------
    def close(self, individuals: Iterable[owlready2.Thing], prop: object) -> None:
        """Close ``prop`` on ``individuals``: its asserted values are all its values.

        Stated as ``prop max n`` (n the number of asserted values, which get unique names),
        counting the values of sub-properties, which OWL entails as values of ``prop``
        (rm:buyer and rm:seller are sub-properties of rm:participant).
        """
        # Only the CHECK helpers are read backwards: an rm: property with an owl:inverseOf
        # in the ontology (rm:employedBy / rm:employs) still counts its own values.
        helper = not prop.iri.startswith(RM)
        inverse = getattr(prop, "inverse_property", None) if helper else None
        forward = inverse if inverse is not None else prop
        family = [rdflib.URIRef(p.iri) for p in forward.descendants()]
        for individual in individuals:
            if (individual.iri, prop.iri) in self.closed:
                continue
            self.closed.add((individual.iri, prop.iri))
            node = rdflib.URIRef(individual.iri)
            if inverse is not None:
                nodes = (s for p in family for s in self.graph.subjects(p, node))
            else:
                nodes = (o for p in family for o in self.graph.objects(node, p))
            values = [self.individual(iri) for iri in self._iris(nodes)]
            self.unique_names(values)
            individual.is_a.append(prop.max(len(values)))

    def close_data(self, individuals: Iterable[owlready2.Thing], name: str) -> None:
        """Close a data property: ``rm:name max n``, n the number of asserted values."""
        predicate = rdflib.URIRef(RM + name)
        prop = self.rm(name)
        for individual in individuals:
            if (individual.iri, prop.iri) in self.closed:
                continue
            self.closed.add((individual.iri, prop.iri))
            values = {
                v.toPython() for v in self.graph.objects(rdflib.URIRef(individual.iri), predicate)
            }
            individual.is_a.append(prop.max(len(values)))

    def unique_names(self, individuals: Iterable[owlready2.Thing]) -> None:
        """These individuals are pairwise different (stated once, in ``finish``)."""
        for individual in individuals:
            self.distinct[individual.iri] = individual

    def named(self, individual: owlready2.Thing) -> owlready2.ThingClass:
        """The class of ``individual`` alone: asserted on it, disjoint from every other such
        class. It stands for the nominal {individual} (see "No unique names" above)."""
        if individual.iri not in self.markers:
            local = re.sub(r"\W", "_", individual.iri.rsplit("/", 1)[-1].rsplit("#", 1)[-1])
            with self.check:
                marker = types.new_class(f"the_{local}_{len(self.markers)}", (owlready2.Thing,))
            individual.is_a.append(marker)
            self.markers[individual.iri] = marker
        return self.markers[individual.iri]

    def finish(self) -> None:
        """State unique names: every individual given one is different from every other;
        the classes standing for single individuals are pairwise disjoint."""
        with self.check:
            named = {**self.distinct, **{iri: self.world[iri] for iri in self.markers}}
            if len(named) > 1:
                owlready2.AllDifferent([named[iri] for iri in sorted(named)])
            if len(self.markers) > 1:
                owlready2.AllDisjoint([self.markers[iri] for iri in sorted(self.markers)])

    # --- pieces shared by several definitions --------------------------------------------------
    def firms(self, prop: str) -> list[owlready2.Thing]:
        """The firms a rule's ?firm can bind through ``rm:prop``; they get unique names."""
        firms = self.objects(prop)
        for firm in firms:
            self.named(firm)
        return firms

    def market_of(self, name: str, sub: str, bodies: list[list[tuple]]) -> object:
        """A CHECK relation "in the … market of", derived by SWRL as the market rules derive
        rm:in…MarketOf, with the asserted rm:in…MarketOf as a sub-property."""
        key = "market:" + name
        if key not in self.helpers:
            relation = self.relation(name, sub=sub)
            for body in bodies:
                self.swrl(body, [(relation, "stakeholder", "firm")])
            self.helpers[key] = relation
        return self.helpers[key]


# --- §2 the six markets, §1 the roles (rules market-*, role-*) ------------------------------


def _customer_market_of(o: _Oracle) -> object:
    """market-customer: the stakeholder bought from a focal firm."""
    return o.market_of(
        "customerMarketOf",
        "inCustomerMarketOf",
        [
            [
                (o.rm("Purchase"), "purchase"),
                (o.rm("buyer"), "purchase", "stakeholder"),
                (o.rm("seller"), "purchase", "firm"),
                (o.rm("FocalFirm"), "firm"),
            ]
        ],
    )


def _referral_market_of(o: _Oracle) -> object:
    """market-referral: the stakeholder referred someone to a focal firm."""
    return o.market_of(
        "referralMarketOf",
        "inReferralMarketOf",
        [
            [
                (o.rm("Referral"), "referral"),
                (o.rm("referrer"), "referral", "stakeholder"),
                (o.rm("referredTo"), "referral", "firm"),
                (o.rm("FocalFirm"), "firm"),
            ]
        ],
    )


def _alliance_partner(o: _Oracle) -> list[tuple]:
    """SWRL body of market-supplier-alliance: ?stakeholder shares an alliance with ?firm,
    a focal firm, and is not the firm itself."""
    o.unique_names(o.objects("allianceMember"))
    return [
        (o.rm("Alliance"), "alliance"),
        (o.rm("allianceMember"), "alliance", "firm"),
        (o.rm("allianceMember"), "alliance", "stakeholder"),
        (o.rm("FocalFirm"), "firm"),
        ("differentFrom", "stakeholder", "firm"),
    ]


def _supplier_market_of(o: _Oracle) -> object:
    """market-supplier and market-supplier-alliance."""
    return o.market_of(
        "supplierMarketOf",
        "inSupplierMarketOf",
        [
            [(o.rm("suppliesTo"), "stakeholder", "firm"), (o.rm("FocalFirm"), "firm")],
            _alliance_partner(o),
        ],
    )


def _internal_market_of(o: _Oracle) -> object:
    """market-internal and market-internal-unit."""
    return o.market_of(
        "internalMarketOf",
        "inInternalMarketOf",
        [
            [(o.rm("employedBy"), "stakeholder", "firm"), (o.rm("FocalFirm"), "firm")],
            [
                (o.rm("employedBy"), "stakeholder", "unit"),
                (o.rm("unitOf"), "unit", "firm"),
                (o.rm("FocalFirm"), "firm"),
            ],
        ],
    )


def _influence_market_of(o: _Oracle) -> object:
    """market-influence and market-influence-kind."""
    return o.market_of(
        "influenceMarketOf",
        "inInfluenceMarketOf",
        [
            [(o.rm("influences"), "stakeholder", "firm"), (o.rm("FocalFirm"), "firm")],
            [
                (o.rm("influencerKind"), "stakeholder", "kind"),
                (o.rm("focalParty"), "relationship", "firm"),
                (o.rm("counterparty"), "relationship", "stakeholder"),
                (o.rm("FocalFirm"), "firm"),
            ],
        ],
    )


@_models("CustomerMarket")
def _customer_market(o: _Oracle) -> owlready2.ThingClass:
    buys = o.relation("buys", inverse_of="buyer")
    return o.defined(
        "CustomerMarket", buys.some(o.rm("Purchase") & o.rm("seller").some(o.rm("FocalFirm")))
    )


@_models("ReferralMarket")
def _referral_market(o: _Oracle) -> owlready2.ThingClass:
    refers = o.relation("refers", inverse_of="referrer")
    return o.defined(
        "ReferralMarket",
        refers.some(o.rm("Referral") & o.rm("referredTo").some(o.rm("FocalFirm"))),
    )


@_models("StrongReferralMarket")
def _strong_referral_market(o: _Oracle) -> owlready2.ThingClass:
    cls = o.primitive("StrongReferralMarket")
    o.swrl(
        [
            (_referral_market_of(o), "stakeholder", "firm"),
            (o.rm("Referral"), "referral"),
            (o.rm("referrer"), "referral", "stakeholder"),
            (o.rm("referredTo"), "referral", "firm"),
            (o.rm("referredParty"), "referral", "newCustomer"),
            (o.rm("resultedIn"), "referral", "purchase"),
            (o.rm("Purchase"), "purchase"),
            (o.rm("buyer"), "purchase", "newCustomer"),
            (o.rm("seller"), "purchase", "firm"),
        ],
        [(cls, "stakeholder")],
    )
    return cls


@_models("SupplierMarket")
def _supplier_market(o: _Oracle) -> owlready2.ThingClass:
    partner = o.primitive("AlliancePartner")
    o.swrl(_alliance_partner(o), [(partner, "stakeholder")])
    supplier = o.rm("suppliesTo").some(o.rm("FocalFirm"))
    return o.defined("SupplierMarket", supplier | partner)


@_models("RecruitmentMarket")
def _recruitment_market(o: _Oracle) -> owlready2.ThingClass:
    candidates = o.subjects("candidateOf")
    employers = o.objects("employedBy", of=candidates)
    o.close(candidates, o.rm("employedBy"))
    o.close(employers, o.rm("unitOf"))
    for organisation in employers + o.objects("unitOf", of=employers):
        o.named(organisation)
    not_hired = [
        o.rm("candidateOf").some(o.rm("FocalFirm") & o.named(firm))
        & owlready2.Not(o.rm("employedBy").some(o.named(firm)))
        & owlready2.Not(o.rm("employedBy").some(o.rm("unitOf").some(o.named(firm))))
        for firm in o.firms("candidateOf")
    ]
    channel = o.rm("recruitsFor").some(o.rm("FocalFirm"))
    return o.defined("RecruitmentMarket", owlready2.Or([channel, *not_hired]))


@_models("InfluenceMarket")
def _influence_market(o: _Oracle) -> owlready2.ThingClass:
    kind = o.rm("influencerKind").some(owlready2.Thing) & owlready2.Inverse(
        o.rm("counterparty")
    ).some(o.rm("focalParty").some(o.rm("FocalFirm")))
    return o.defined("InfluenceMarket", o.rm("influences").some(o.rm("FocalFirm")) | kind)


@_models("InternalMarket")
def _internal_market(o: _Oracle) -> owlready2.ThingClass:
    employed = o.rm("employedBy")
    return o.defined(
        "InternalMarket",
        employed.some(o.rm("FocalFirm")) | employed.some(o.rm("unitOf").some(o.rm("FocalFirm"))),
    )


@_models("Customer")
def _customer(o: _Oracle) -> owlready2.ThingClass:
    return o.defined("Customer", _customer_market_of(o).some(owlready2.Thing))


@_models("Employee")
def _employee(o: _Oracle) -> owlready2.ThingClass:
    return o.defined("Employee", _internal_market_of(o).some(owlready2.Thing))


@_models("ReferralSource")
def _referral_source(o: _Oracle) -> owlready2.ThingClass:
    return o.defined("ReferralSource", _referral_market_of(o).some(owlready2.Thing))


@_models("Influencer")
def _influencer(o: _Oracle) -> owlready2.ThingClass:
    return o.defined("Influencer", _influence_market_of(o).some(owlready2.Thing))


@_models("Supplier")
def _supplier(o: _Oracle) -> owlready2.ThingClass:
    """role-supplier: in the supplier market of the very firm it supplies."""
    cls = o.primitive("Supplier")
    o.swrl(
        [
            (_supplier_market_of(o), "stakeholder", "firm"),
            (o.rm("suppliesTo"), "stakeholder", "firm"),
        ],
        [(cls, "stakeholder")],
    )
    return cls


# --- §8 key and global accounts (rules account-*) -------------------------------------------


def _individually_customised(o: _Oracle) -> owlready2.ThingClass:
    return o.helper_class(
        "IndividuallyCustomisedSegment",
        o.rm("targetingMode").some(o.named(o.rm("IndividualCustomisation"))),
    )


@_models("KeyAccount")
def _key_account(o: _Oracle) -> owlready2.ThingClass:
    cls = o.primitive("KeyAccount")
    o.swrl(
        [
            (_customer_market_of(o), "account", "firm"),
            (o.rm("inSegment"), "account", "segment"),
            (_individually_customised(o), "segment"),
            (o.rm("targetedBy"), "segment", "firm"),
        ],
        [(cls, "account")],
    )
    return cls


@_models("GlobalAccount")
def _global_account(o: _Oracle) -> owlready2.ThingClass:
    """account-global: at least θ distinct sales teams of one firm on the account."""
    teams_needed = max(1, math.ceil(Decimal(o.theta("GlobalAccountTeams"))))
    o.unique_names(o.objects("ownedBy"))
    per_firm = []
    for number, firm in enumerate(o.firms("sellingFirm"), start=1):
        this_firm = o.named(firm)
        teams = o.relation(f"servedByTeamOfSellingFirm{number}")
        o.swrl(
            [
                (o.rm("SalesOpportunity"), "opportunity"),
                (o.rm("sellingFirm"), "opportunity", "firm"),
                (this_firm, "firm"),
                (o.rm("sharedAccount"), "opportunity", "account"),
                (o.rm("ownedBy"), "opportunity", "team"),
                (o.rm("SalesTeam"), "team"),
            ],
            [(teams, "account", "team")],
        )
        segment = _individually_customised(o) & o.rm("targetedBy").some(o.named(firm))
        per_firm.append(teams.min(teams_needed) & o.rm("inSegment").some(segment))
    key = o.build("KeyAccount") | o.rm("KeyAccount")
    return o.defined("GlobalAccount", key & _any(per_firm))


# --- §4 the loyalty ladder (rules ladder-*) -------------------------------------------------


class _Ladder:
    """What the ladder rules ask of a customer relationship, per firm, with the world closed
    where they negate or count: its purchases, referrals, joint initiatives and satisfaction.

    Every rung above the purchaser asks for two purchases (advocates and partners are
    customers who climbed the ladder), and trust and commitment make no rung: a partner
    needs a joint initiative (see ladder-partner-joint-initiative.rq).
    """

    def __init__(self, o: _Oracle) -> None:
        self.o = o
        self.buys = o.relation("buys", inverse_of="buyer")
        self.refers = o.relation("refers", inverse_of="referrer")
        self.takes_part = o.relation("takesPartIn", inverse_of="participant")
        relationships = o.subjects("counterparty")
        customers = o.objects("counterparty")
        for prop in (self.buys, self.refers, self.takes_part):
            o.close(customers, prop)
        o.close(o.subjects("buyer"), o.rm("seller"))
        o.close(o.subjects("referrer"), o.rm("referredTo"))
        o.close(o.subjects_of_family(o.rm("participant")), o.rm("jointWith"))
        o.close_data(relationships, "satisfactionLevel")
        o.unique_names(o.subjects("buyer"))
        for firm in o.objects("seller") + o.objects("referredTo") + o.objects("jointWith"):
            o.named(firm)
        self.firms = o.firms("focalParty")

    def purchase_from(self, firm: owlready2.Thing) -> object:
        return self.o.rm("Purchase") & self.o.rm("seller").some(self.o.named(firm))

    def repeat_buyer(self, firm: owlready2.Thing) -> object:
        """Two purchases from the firm or more: the client rung's purchases, which every
        rung above it asks for too."""
        return self.buys.min(2, self.purchase_from(firm))

    def referred(self, firm: owlready2.Thing) -> object:
        referral = self.o.rm("Referral") & self.o.rm("referredTo").some(self.o.named(firm))
        return self.refers.some(referral)

    def joint(self, firm: owlready2.Thing) -> object:
        initiative = self.o.rm("JointInitiative") & self.o.rm("jointWith").some(self.o.named(firm))
        return self.takes_part.some(initiative)

    def stage(self, customer: Callable[[owlready2.Thing], object]) -> object:
        """A customer relationship with some firm whose customer meets ``customer(firm)``."""
        per_firm = [
            self.o.rm("focalParty").some(self.o.named(firm))
            & self.o.rm("counterparty").some(customer(firm))
            for firm in self.firms
        ]
        return self.o.rm("CustomerRelationship") & _any(per_firm)

    def not_higher(self, firm: owlready2.Thing, *, referral: bool = True) -> object:
        """No joint initiative with the firm (partner), nor referral for it (advocate)."""
        excluded = owlready2.Not(self.joint(firm))
        return excluded & owlready2.Not(self.referred(firm)) if referral else excluded


def _ladder(o: _Oracle) -> _Ladder:
    if "ladder" not in o.helpers:
        o.helpers["ladder"] = _Ladder(o)
    return o.helpers["ladder"]


@_models("Prospect")
def _prospect(o: _Oracle) -> owlready2.ThingClass:
    ladder = _ladder(o)
    return o.defined(
        "Prospect",
        ladder.stage(
            lambda firm: (
                o.rm("inSegment").some(o.rm("targetedBy").some(o.named(firm)))
                & owlready2.Not(ladder.buys.some(ladder.purchase_from(firm)))
            )
        ),
    )


@_models("Purchaser")
def _purchaser(o: _Oracle) -> owlready2.ThingClass:
    ladder = _ladder(o)
    return o.defined(
        "Purchaser",
        ladder.stage(lambda firm: ladder.buys.exactly(1, ladder.purchase_from(firm))),
    )


def _repeat_buyer(o: _Oracle, satisfaction: object) -> object:
    ladder = _ladder(o)
    return (
        ladder.stage(lambda firm: ladder.repeat_buyer(firm) & ladder.not_higher(firm))
        & satisfaction
    )


@_models("Client")
def _client(o: _Oracle) -> owlready2.ThingClass:
    """ladder-client-dissatisfied and ladder-client-satisfaction-unknown."""
    unknown = o.rm("satisfactionLevel").max(0)
    below = o.below("satisfactionLevel", "SatisfactionThreshold")
    return o.defined("Client", _repeat_buyer(o, below | unknown))


@_models("Supporter")
def _supporter(o: _Oracle) -> owlready2.ThingClass:
    satisfied = o.at_least("satisfactionLevel", "SatisfactionThreshold")
    return o.defined("Supporter", _repeat_buyer(o, satisfied))


@_models("Advocate")
def _advocate(o: _Oracle) -> owlready2.ThingClass:
    ladder = _ladder(o)
    return o.defined(
        "Advocate",
        ladder.stage(
            lambda firm: (
                ladder.repeat_buyer(firm)
                & ladder.referred(firm)
                & ladder.not_higher(firm, referral=False)
            )
        ),
    )


@_models("Partner")
def _partner(o: _Oracle) -> owlready2.ThingClass:
    """ladder-partner-joint-initiative: repeat purchases and a joint initiative."""
    ladder = _ladder(o)
    return o.defined(
        "Partner", ladder.stage(lambda firm: ladder.repeat_buyer(firm) & ladder.joint(firm))
    )


@_models("LoyalCustomer")
def _loyal_customer(o: _Oracle) -> owlready2.ThingClass:
    """ladder-loyal-customer: a stage whose rm:stageRank is at least the supporter's, and a
    first and a later dated purchase from the firm rm:LoyaltyPeriodMonths full months apart.

    OWL has no date arithmetic, so the period is grounded on the purchase dates the data
    asserts: one disjunct per date d of a purchase from the firm, "a purchase on or before
    d and one on or after d plus the period" (``_period_end``). With d the first purchase's
    date this is the rule's condition; and any d that satisfies it gives a first purchase
    no later than d, whose own period ends no later than d's. Dates are xsd:dateTime at
    midnight here (``owl2_datatypes``), compared with xsd:dateTime facets.
    """
    ladder = _ladder(o)
    months = int(Decimal(o.theta("LoyaltyPeriodMonths")))
    date = o.rm("interactionDate")

    def dated(firm: owlready2.Thing, **bound: str) -> object:
        # the bound as xsd:dateTime text: owlready2 stores a facet's value as given, and
        # str() of a datetime (a space, not "T") is not xsd:dateTime to HermiT
        facet = owlready2.ConstrainedDatatype(datetime.datetime, **bound)
        return ladder.buys.some(ladder.purchase_from(firm) & date.some(facet))

    def long_buyer(firm: owlready2.Thing) -> object:
        days = sorted(_purchase_dates(o.graph, firm.iri))
        return _any(
            [
                dated(firm, max_inclusive=_midnight(day))
                & dated(firm, min_inclusive=_midnight(_period_end(day, months)))
                for day in days
            ]
        )

    members = [o.build(name) | o.rm(name) for name in _loyal_stages(o.graph)]
    return o.defined("LoyalCustomer", ladder.stage(long_buyer) & _any(members))


def _purchase_dates(graph: rdflib.Graph, firm: str) -> set[datetime.date]:
    """The dates of the purchases the data asserts with ``firm`` as seller."""
    days = set()
    seller, when = rdflib.URIRef(RM + "seller"), rdflib.URIRef(RM + "interactionDate")
    for purchase in graph.subjects(seller, rdflib.URIRef(firm)):
        for value in graph.objects(purchase, when):
            python = value.toPython() if isinstance(value, rdflib.Literal) else None
            if isinstance(python, datetime.datetime):
                days.add(python.date())
            elif isinstance(python, datetime.date):
                days.add(python)
    return days


def _period_end(day: datetime.date, months: int) -> datetime.date:
    """The first date at least ``months`` full calendar months after ``day``, as the rule
    counts them: the same day ``months`` months on, or the 1st of the month after that
    when the month is too short for the day (31 January + 1 month: 1 March)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    try:
        return datetime.date(year, month + 1, day.day)
    except ValueError:
        year, month = divmod(index + 1, 12)
        return datetime.date(year, month + 1, 1)


def _midnight(day: datetime.date) -> str:
    """The start of ``day`` as xsd:dateTime text, as ``owl2_datatypes`` writes the data."""
    return f"{day.isoformat()}T00:00:00"


def _loyal_stages(graph: rdflib.Graph) -> list[str]:
    """The stages (local names) whose rm:stageRank is at least rm:Supporter's: the rungs
    with a favourable attitude (a client's repeat buying alone is spurious loyalty)."""
    ranks = {
        str(stage).removeprefix(RM): Decimal(str(rank))
        for stage, rank in graph.subject_objects(rdflib.URIRef(RM + "stageRank"))
        if str(stage).startswith(RM)
    }
    if "Supporter" not in ranks:
        raise OwlCheckError("the ontology gives rm:Supporter no rm:stageRank")
    return [name for name, rank in sorted(ranks.items()) if rank >= ranks["Supporter"]]


# --- §5 promises (rules promise-*) ----------------------------------------------------------


def _promises(o: _Oracle) -> None:
    """Close brokenIn and enabledBy on the promises: their absence is what the rules test."""
    promises = o.instances("Promise")
    o.close(promises, o.rm("brokenIn"))
    o.close(promises, o.rm("enabledBy"))


@_models("BrokenPromise")
def _broken_promise(o: _Oracle) -> owlready2.ThingClass:
    # brokenIn has range rm:Interaction: "some Interaction" is "some Thing", as in the rule.
    return o.defined("BrokenPromise", o.rm("Promise") & o.rm("brokenIn").some(owlready2.Thing))


@_models("KeptPromise")
def _kept_promise(o: _Oracle) -> owlready2.ThingClass:
    _promises(o)
    # Kept in a service encounter (where interactive marketing keeps promises), broken nowhere.
    kept = o.rm("keptIn").some(o.rm("ServiceEncounter"))
    return o.defined("KeptPromise", o.rm("Promise") & kept & o.rm("brokenIn").max(0))


@_models("UnenabledPromise")
def _unenabled_promise(o: _Oracle) -> owlready2.ThingClass:
    _promises(o)
    made = o.rm("madeIn").some(o.rm("ExternalMarketing"))
    return o.defined("UnenabledPromise", o.rm("Promise") & made & o.rm("enabledBy").max(0))


# --- §6 Fournier's brand-relationship forms (rules fournier-*) ------------------------------


def _brand(o: _Oracle, *conditions: object) -> object:
    return owlready2.And([o.rm("BrandRelationship"), *conditions])


def _voluntary(o: _Oracle, value: bool) -> object:
    return o.rm("isVoluntary").value(value)


def _duration(o: _Oracle, name: str) -> object:
    return o.rm("durationType").some(o.named(o.rm(name)))


@_models("ArrangedMarriage")
def _arranged_marriage(o: _Oracle) -> owlready2.ThingClass:
    """Imposed by a third party: one neither the consumer nor the brand's owner of this very
    relationship, a join with "different from" (SWRL) over uniquely named parties."""
    cls = o.primitive("ArrangedMarriage")
    imposed = o.helper_class(
        "ImposedLastingUnintimate",
        _brand(
            o,
            _voluntary(o, False),
            _duration(o, "Enduring"),
            o.below("intimacyLevel", "LowIntimacyThreshold"),
        ),
    )
    o.unique_names(o.objects("imposedBy") + o.objects("counterparty") + o.objects("focalParty"))
    o.swrl(
        [
            (imposed, "relationship"),
            (o.rm("counterparty"), "relationship", "consumer"),
            (o.rm("focalParty"), "relationship", "owner"),
            (o.rm("imposedBy"), "relationship", "third"),
            ("differentFrom", "third", "consumer"),
            ("differentFrom", "third", "owner"),
        ],
        [(cls, "relationship")],
    )
    return cls


@_models("BestFriendship")
def _best_friendship(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "BestFriendship",
        _brand(
            o,
            _voluntary(o, True),
            o.rm("isSymmetric").value(True),
            o.signed("valence", positive=True),
            o.at_least("selfConnection", "HighSelfConnectionThreshold"),
        ),
    )


@_models("CasualFriendship")
def _casual_friendship(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "CasualFriendship",
        _brand(
            o,
            _voluntary(o, True),
            o.below("intensity", "SuperficialIntensityThreshold"),
            o.below("usageFrequency", "InfrequentUsageThreshold"),
        ),
    )


@_models("ChildhoodFriendship")
def _childhood_friendship(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "ChildhoodFriendship",
        _brand(
            o,
            o.rm("beganInChildhood").value(True),
            o.below("usageFrequency", "InfrequentUsageThreshold"),
            o.at_least("lovePassion", "HighAffectThreshold"),
        ),
    )


@_models("CommittedPartnership")
def _committed_partnership(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "CommittedPartnership",
        _brand(
            o,
            _voluntary(o, True),
            _duration(o, "Enduring"),
            o.at_least("trustLevel", "HighThreshold"),
            o.at_least("commitmentLevel", "HighThreshold"),
            o.at_least("intimacyLevel", "HighThreshold"),
        ),
    )


def _same_consumer_other_brand(o: _Oracle, this: list[tuple], other: list[tuple]) -> list:
    """SWRL body: ?relationship and ?other, brand relationships of one consumer with two
    different brands (and whatever ``this`` and ``other`` add)."""
    o.unique_names(o.objects("withBrand"))
    return [
        (o.rm("BrandRelationship"), "relationship"),
        *this,
        (o.rm("counterparty"), "relationship", "consumer"),
        (o.rm("withBrand"), "relationship", "brand"),
        (o.rm("BrandRelationship"), "other"),
        *other,
        (o.rm("counterparty"), "other", "consumer"),
        (o.rm("withBrand"), "other", "otherBrand"),
        ("differentFrom", "brand", "otherBrand"),
    ]


@_models("CompartmentalizedFriendship")
def _compartmentalized_friendship(o: _Oracle) -> owlready2.ThingClass:
    """Another brand of the category in a *different* usage context. Contexts are literals,
    which SWRL's differentFrom does not compare: one class per context value of the data
    (rm:usageContext value "…"), and one rule per ordered pair of different values."""
    cls = o.primitive("CompartmentalizedFriendship")
    category = o.rm("productCategory")
    values = sorted({str(v) for v in o.graph.objects(None, rdflib.URIRef(RM + "usageContext"))})
    contexts = [
        o.helper_class(f"InUsageContext{number}", o.rm("usageContext").value(value))
        for number, value in enumerate(values, start=1)
    ]
    for here in contexts:
        for there in contexts:
            if here is there:
                continue
            body = _same_consumer_other_brand(o, [(here, "relationship")], [(there, "other")])
            body += [(category, "brand", "category"), (category, "otherBrand", "category")]
            o.swrl(body, [(cls, "relationship")])
    return cls


@_models("Courtship")
def _courtship(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Courtship",
        _brand(
            o,
            _voluntary(o, True),
            _duration(o, "ShortTerm"),
            o.rm("onTrial").value(True),
            o.signed("valence", positive=True),
            o.at_least("commitmentLevel", "NearZeroCommitmentThreshold"),
        ),
    )


@_models("Dependency")
def _dependency(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Dependency",
        _brand(
            o,
            o.rm("feltIrreplaceable").value(True),
            o.signed("valence", positive=True),
            o.at_least("intensity", "VeryHighIntensityThreshold"),
        ),
    )


@_models("Enmity")
def _enmity(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Enmity",
        _brand(
            o,
            o.signed("valence", positive=False),
            o.at_least("intensity", "HighIntensityThreshold"),
        ),
    )


@_models("Enslavement")
def _enslavement(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Enslavement",
        _brand(
            o,
            _voluntary(o, False),
            o.signed("valence", positive=False),
            o.at_least("switchingBarrier", "HighSwitchingBarrierThreshold"),
        ),
    )


@_models("Fling")
def _fling(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Fling",
        _brand(
            o,
            _duration(o, "ShortTerm"),
            o.at_least("emotionalReward", "HighEmotionalRewardThreshold"),
            o.below("commitmentLevel", "NearZeroCommitmentThreshold"),
        ),
    )


@_models("Kinship")
def _kinship(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Kinship",
        _brand(o, _voluntary(o, False), o.rm("inheritedFrom").some(owlready2.Thing)),
    )


@_models("MarriageOfConvenience")
def _marriage_of_convenience(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "MarriageOfConvenience",
        _brand(o, _duration(o, "Enduring"), o.rm("triggeredBy").some(o.rm("ContextChange"))),
    )


@_models("Rebound")
def _rebound(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "Rebound", _brand(o, o.rm("replaces").some(o.signed("valence", positive=False)))
    )


@_models("SecretAffair")
def _secret_affair(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "SecretAffair",
        _brand(
            o,
            o.rm("isPublic").value(False),
            o.at_least("lovePassion", "HighAffectThreshold"),
        ),
    )


# --- §7 the commitment-trust model (rules kmv-*) --------------------------------------------


@_models("CommittedTrustingRelationship")
def _committed_trusting(o: _Oracle) -> owlready2.ThingClass:
    return o.defined(
        "CommittedTrustingRelationship",
        o.rm("focalParty").some(owlready2.Thing)
        & o.at_least("trustLevel", "TrustThreshold")
        & o.at_least("commitmentLevel", "CommitmentThreshold"),
    )


@_models("AtRiskRelationship")
def _at_risk(o: _Oracle) -> owlready2.ThingClass:
    """kmv-at-risk-leaving and kmv-at-risk-opportunism."""
    leaving = o.at_least("propensityToLeave", "PropensityToLeaveThreshold")
    opportunism = o.at_least("opportunisticBehaviour", "OpportunismThreshold")
    return o.defined(
        "AtRiskRelationship",
        o.rm("focalParty").some(owlready2.Thing)
        & o.below("commitmentLevel", "LowCommitmentThreshold")
        & (leaving | opportunism),
    )


def _any(expressions: list) -> object:
    """The union of ``expressions``: owl:Nothing if there are none."""
    if not expressions:
        return owlready2.Nothing
    return expressions[0] if len(expressions) == 1 else owlready2.Or(expressions)
