"""Deterministic generator of synthetic relmark data, written as N-Triples.

    python benchmarks/generate.py --triples 100000 --out benchmarks/out/data-100k.nt
    python benchmarks/generate.py --triples 1M --out benchmarks/out/data-1m.nt
    python benchmarks/generate.py --triples 10k --out benchmarks/out/data-10k.nt --validate

The data looks like a CRM export of a few focal firms: their sales teams, staff, brands,
campaigns and segments; then, one customer at a time, the customer (a person or an
organisation), its customer relationship with scores, its purchases, service encounters and
sales calls, sometimes the referral that brought it in, a promise made and kept or broken,
a brand relationship, a loyalty-programme membership, a sales opportunity for business
accounts; every so often a new employee or a supplier with its supplier relationship and
deliveries. Firms have unequal market shares, so one firm is small.

Every node an rm: object property points to is typed in the same file (or is an ontology
individual), every property the shapes require is present, and no triple is written twice,
so a store holds exactly the number of triples the file has. Generation itself uses only
the standard library (seeded ``random.Random``): same seed and size, same bytes. The file
stops within a few triples of ``--triples`` and is then topped up to the exact count with
``rm:knows`` links between customers.

``--validate`` (needs pyshacl and rdflib) checks the output against ontology/shapes.ttl with
the ontology mixed in, the way relmark loads data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

BENCH = "https://w3id.org/relmark/bench/"
RM = "https://w3id.org/relmark/ontology#"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
XSD = "http://www.w3.org/2001/XMLSchema#"

ROOT = Path(__file__).resolve().parents[1]

# The firms, with their share of the customers. The last one is small on purpose: the 2-hop
# benchmark query asks about its customers, so its answer stays a few hundred rows.
FIRMS = [
    ("Aurora Bank", 0.44, "RelationshipMarketing", ["current accounts", "mortgages"]),
    ("Lumina Beauty", 0.30, "RelationshipMarketing", ["skin care", "fragrances"]),
    ("Ferro Industrial", 0.18, "TransactionMarketing", ["bearings", "linear drives"]),
    ("Verde Telecom", 0.08, "RelationshipMarketing", ["mobile plans", "home fibre"]),
]
TEAMS_PER_FIRM = 3
CAMPAIGNS_PER_FIRM = 3
TRAININGS_PER_FIRM = 2
SEGMENTS_PER_FIRM = 2
FIRST_EMPLOYEES_PER_FIRM = 2

# IRIs the benchmarks query (see bench_http.py). Point lookup: a customer relationship with
# scores, dates and type, ~12 triples. The 2-hop join: customers of the smallest firm.
POINT_SUBJECT = BENCH + "relationship/1"
SMALL_FIRM = BENCH + f"firm/{len(FIRMS)}"


def words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = words(
    "Giulia Marco Sofia Luca Chiara Matteo Anna Paolo Elena Andrea Sara Davide Laura "
    "Simone Marta Stefano Emma Oliver Amelia Noah Mia Liam Ava Lucas Hannah Jonas Lea "
    "Felix Ines Hugo Clara Mateo Lucia Pablo Nora Erik Alma Oskar Freya Kenji Yuki Mei "
    "Arjun Priya"
)
LAST_NAMES = words(
    "Rossi Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti DeLuca Costa "
    "Fontana Smith Jones Taylor Brown Wilson Evans Muller Schmidt Fischer Weber Martin "
    "Bernard Dubois Garcia Fernandez Lopez Novak Horvat Nielsen Larsen Tanaka Sato Chen "
    "Wang Kumar Singh"
)
ORG_STEMS = words(
    "Alpine Borealis Cobalt Delta Elmwood Fjord Granite Harbor Iris Juniper Kestrel "
    "Lakeside Meridian Nordic Orion Pioneer Quartz Riverside Summit Tidal Umbra Vertex "
    "Willow Zenith"
)
ORG_KINDS = words(
    "Logistics Foods Motors Pharma Textiles Robotics Energy Packaging Retail Clinics "
    "Hotels Builders Chemicals Instruments Software Dairy"
)
ORG_SUFFIXES = ["S.p.A.", "Srl", "GmbH", "Ltd", "SA", "AB", "Inc."]

CHANNELS = ["Email", "Phone", "FaceToFace", "Web", "Mail", "Fax"]
CHANNEL_WEIGHTS = [30, 25, 15, 25, 4, 1]
INTERACTION_KINDS = ["ServiceEncounter", "CourtesyContact", "SalesCall", "Negotiation"]
INTERACTION_KIND_WEIGHTS = [50, 25, 20, 5]
STEPS = [
    "ProspectingAndQualifying",
    "PreApproach",
    "Approach",
    "PresentationAndDemonstration",
    "HandlingObjections",
    "Closing",
    "FollowUpAndMaintenance",
]
FOURNIER = [
    "BrandRelationship",  # form left to the rules
    "CommittedPartnership",
    "BestFriendship",
    "CasualFriendship",
    "Fling",
    "MarriageOfConvenience",
    "Dependency",
    "Kinship",
]
FOURNIER_WEIGHTS = [40, 15, 10, 15, 6, 6, 5, 3]
GUMMESSON = ["R1", "R5", "R11", "R12"]
PROMISES = [
    "Any card blocked will be replaced within 48 hours.",
    "A named adviser answers every call the same day.",
    "Spare parts delivered to any site within 72 hours.",
    "Free returns within 30 days, no questions asked.",
    "Your line is repaired within one working day.",
]

DAY0 = dt.date(2012, 1, 1)
TODAY = dt.date(2026, 11, 15)
SPAN_DAYS = (TODAY - DAY0).days


def iri(local: str) -> str:
    return f"<{BENCH}{local}>"


def rm(local: str) -> str:
    return f"<{RM}{local}>"


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def string(text: str) -> str:
    return f'"{escape(text)}"'


def typed(lexical: str, datatype: str) -> str:
    return f'"{lexical}"^^<{XSD}{datatype}>'


def decimal(value: float, places: int = 2) -> str:
    return typed(f"{value:.{places}f}", "decimal")


def date(day: dt.date) -> str:
    return typed(day.isoformat(), "date")


def boolean(value: bool) -> str:
    return typed("true" if value else "false", "boolean")


class Writer:
    """Counts triples and holds them in a buffer that can be kept or dropped."""

    def __init__(self, out):
        self.out = out
        self.count = 0
        self.block: list[str] = []

    def t(self, s: str, p: str, o: str) -> None:
        self.block.append(f"{s} {p} {o} .\n")

    def commit(self) -> None:
        self.out.write("".join(self.block))
        self.count += len(self.block)
        self.block = []

    def drop(self) -> None:
        self.block = []


class Generator:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.next_id: dict[str, int] = {}
        self.firms: list[str] = []
        self.teams: list[list[str]] = []
        self.brands: list[list[str]] = []
        self.campaigns: list[list[str]] = []
        self.trainings: list[list[str]] = []
        self.segments: list[list[str]] = []
        self.employees: list[list[str]] = []
        self.customers: list[list[str]] = []  # per firm
        self.persons: list[str] = []  # customer persons, for filler rm:knows links

    def new(self, kind: str) -> str:
        n = self.next_id.get(kind, 0) + 1
        self.next_id[kind] = n
        return iri(f"{kind}/{n}")

    def day(self, after: dt.date = DAY0) -> dt.date:
        span = (TODAY - after).days
        return after + dt.timedelta(days=self.r.randint(0, max(span, 0)))

    def score(self, centre: float = 0.6, spread: float = 0.22) -> str:
        return decimal(min(1.0, max(0.0, self.r.gauss(centre, spread))))

    def person_name(self) -> str:
        return f"{self.r.choice(FIRST_NAMES)} {self.r.choice(LAST_NAMES)}"

    def org_name(self) -> str:
        r = self.r
        return f"{r.choice(ORG_STEMS)} {r.choice(ORG_KINDS)} {r.choice(ORG_SUFFIXES)}"

    # -- the firms and what belongs to them ------------------------------------------------

    def preamble(self, w: Writer) -> None:
        for fi, (name, _share, orientation, categories) in enumerate(FIRMS, start=1):
            firm = self.new("firm")
            self.firms.append(firm)
            w.t(firm, RDF_TYPE, rm("FocalFirm"))
            w.t(firm, RDFS_LABEL, string(name))
            w.t(firm, rm("marketingOrientation"), rm(orientation))
            w.t(firm, rm("repeatShare"), decimal(self.r.uniform(0.5, 0.9)))
            teams = []
            for region in ["North", "South", "Key Accounts"][:TEAMS_PER_FIRM]:
                team = self.new("team")
                teams.append(team)
                w.t(team, RDF_TYPE, rm("SalesTeam"))
                w.t(team, RDFS_LABEL, string(f"{name} sales team {region}"))
                w.t(team, rm("unitOf"), firm)
            self.teams.append(teams)
            brands = []
            for category in categories:
                brand = self.new("brand")
                brands.append(brand)
                w.t(brand, RDF_TYPE, rm("Brand"))
                w.t(brand, RDFS_LABEL, string(f"{name.split()[0]} {category.title()}"))
                w.t(brand, rm("productCategory"), string(category))
                w.t(firm, rm("ownsBrand"), brand)
            self.brands.append(brands)
            campaigns = []
            for k in range(CAMPAIGNS_PER_FIRM):
                campaign = self.new("campaign")
                campaigns.append(campaign)
                w.t(campaign, RDF_TYPE, rm("ExternalMarketing"))
                w.t(campaign, RDFS_LABEL, string(f"{name} campaign {2020 + k}"))
                w.t(campaign, rm("performedBy"), firm)
                w.t(campaign, rm("activityDate"), date(dt.date(2020 + k, 3, 1)))
            self.campaigns.append(campaigns)
            trainings = []
            for k in range(TRAININGS_PER_FIRM):
                training = self.new("training")
                trainings.append(training)
                w.t(training, RDF_TYPE, rm("InternalMarketing"))
                w.t(training, RDFS_LABEL, string(f"{name} staff training {2021 + k}"))
                w.t(training, rm("performedBy"), firm)
                w.t(training, rm("activityDate"), date(dt.date(2021 + k, 9, 15)))
            self.trainings.append(trainings)
            segments = []
            for k, mode in enumerate(["MassSegment", "IndividualCustomisation"]):
                segment = self.new("segment")
                segments.append(segment)
                w.t(segment, RDF_TYPE, rm("Segment"))
                w.t(segment, RDFS_LABEL, string(f"{name} segment {k + 1}"))
                w.t(segment, rm("targetingMode"), rm(mode))
                w.t(segment, rm("targetedBy"), firm)
            self.segments.append(segments[:SEGMENTS_PER_FIRM])
            self.employees.append([])
            self.customers.append([])
            for _ in range(FIRST_EMPLOYEES_PER_FIRM):
                self.employee(w, fi - 1)
        w.commit()

    def employee(self, w: Writer, f: int) -> str:
        person = self.new("person")
        w.t(person, RDF_TYPE, rm("Person"))
        w.t(person, RDF_TYPE, rm("Employee"))
        w.t(person, RDFS_LABEL, string(self.person_name()))
        employer = self.r.choice(self.teams[f]) if self.r.random() < 0.7 else self.firms[f]
        w.t(person, rm("employedBy"), employer)
        self.employees[f].append(person)
        return person

    def supplier(self, w: Writer, f: int) -> None:
        r = self.r
        firm = self.firms[f]
        org = self.new("organization")
        w.t(org, RDF_TYPE, rm("Organization"))
        w.t(org, RDF_TYPE, rm("Supplier"))
        w.t(org, RDFS_LABEL, string(self.org_name()))
        w.t(org, rm("suppliesTo"), firm)
        rel = self.new("relationship")
        start = self.day()
        w.t(rel, RDF_TYPE, rm("SupplierRelationship"))
        w.t(rel, rm("focalParty"), firm)
        w.t(rel, rm("counterparty"), org)
        w.t(rel, rm("startDate"), date(start))
        w.t(rel, rm("trustLevel"), self.score(0.7))
        w.t(rel, rm("commitmentLevel"), self.score(0.65))
        w.t(
            rel,
            rm("counterpartyKind"),
            rm(r.choice(["SupplierGoodsExchange", "SupplierServicesExchange"])),
        )
        for _ in range(r.randint(1, 4)):
            purchase = self.new("purchase")
            w.t(purchase, RDF_TYPE, rm("Purchase"))
            w.t(purchase, rm("buyer"), firm)
            w.t(purchase, rm("seller"), org)
            w.t(purchase, rm("interactionDate"), date(self.day(start)))
            w.t(purchase, rm("amount"), decimal(r.lognormvariate(9.0, 1.0)))
            w.t(purchase, rm("partOfRelationship"), rel)

    # -- one customer and everything about it ------------------------------------------------

    def pick_firm(self) -> int:
        return self.r.choices(range(len(FIRMS)), weights=[f[1] for f in FIRMS])[0]

    def customer(self, w: Writer) -> None:
        r = self.r
        f = self.pick_firm()
        firm = self.firms[f]
        is_person = r.random() < 0.72

        if is_person:
            cust = self.new("person")
            w.t(cust, RDF_TYPE, rm("Person"))
            w.t(cust, RDFS_LABEL, string(self.person_name()))
            if self.persons and r.random() < 0.1:
                w.t(cust, rm("knows"), r.choice(self.persons))
        else:
            cust = self.new("organization")
            w.t(cust, RDF_TYPE, rm("Organization"))
            w.t(cust, RDFS_LABEL, string(self.org_name()))
        w.t(cust, RDF_TYPE, rm("Customer"))
        if r.random() < 0.5:
            w.t(cust, rm("inSegment"), r.choice(self.segments[f]))

        # the customer relationship
        rel = self.new("relationship")
        start = self.day()
        w.t(rel, RDF_TYPE, rm("CustomerRelationship"))
        w.t(rel, rm("focalParty"), firm)
        w.t(rel, rm("counterparty"), cust)
        w.t(rel, rm("startDate"), date(start))
        w.t(rel, rm("trustLevel"), self.score(0.62))
        w.t(rel, rm("commitmentLevel"), self.score(0.55))
        w.t(rel, rm("satisfactionLevel"), self.score(0.65))
        if r.random() < 0.6:
            w.t(rel, rm("propensityToLeave"), self.score(0.35))
        if r.random() < 0.3:
            w.t(rel, rm("intimacyLevel"), self.score(0.4))
        if r.random() < 0.4:
            w.t(rel, rm("gummessonType"), rm(r.choice(GUMMESSON)))
        w.t(rel, rm("lifetimeValue"), decimal(r.lognormvariate(7.0, 1.2)))
        if r.random() < 0.06:
            w.t(rel, rm("endDate"), date(self.day(start)))

        # purchases: 0 for prospects, mostly 1-5
        purchases = []
        n_purchases = min(r.choices(range(9), weights=[12, 22, 20, 15, 11, 8, 5, 4, 3])[0], 8)
        for k in range(n_purchases):
            purchase = self.new("purchase")
            purchases.append(purchase)
            w.t(purchase, RDF_TYPE, rm("Purchase"))
            w.t(purchase, rm("buyer"), cust)
            w.t(purchase, rm("seller"), firm)
            w.t(purchase, rm("interactionDate"), date(self.day(start)))
            w.t(purchase, rm("amount"), decimal(r.lognormvariate(4.5 if is_person else 8.0, 1.0)))
            w.t(purchase, rm("isRepeat"), boolean(k > 0))
            w.t(purchase, rm("channel"), rm(r.choices(CHANNELS, CHANNEL_WEIGHTS)[0]))
            w.t(purchase, rm("partOfRelationship"), rel)

        # other interactions with staff
        interactions = []
        for _ in range(r.choices(range(4), weights=[35, 35, 20, 10])[0]):
            interaction = self.new("interaction")
            interactions.append(interaction)
            kind = r.choices(INTERACTION_KINDS, INTERACTION_KIND_WEIGHTS)[0]
            w.t(interaction, RDF_TYPE, rm(kind))
            w.t(interaction, rm("interactionDate"), date(self.day(start)))
            w.t(interaction, rm("channel"), rm(r.choices(CHANNELS, CHANNEL_WEIGHTS)[0]))
            w.t(interaction, rm("participant"), cust)
            w.t(interaction, rm("participant"), r.choice(self.employees[f]))
            w.t(interaction, rm("partOfRelationship"), rel)

        # the referral that brought this customer in
        if self.customers[f] and r.random() < 0.22:
            referral = self.new("referral")
            w.t(referral, RDF_TYPE, rm("Referral"))
            w.t(referral, rm("referrer"), r.choice(self.customers[f]))
            w.t(referral, rm("referredParty"), cust)
            w.t(referral, rm("referredTo"), firm)
            w.t(referral, rm("interactionDate"), date(start))
            w.t(referral, rm("channel"), rm(r.choice(["Phone", "Email", "FaceToFace"])))
            if purchases and r.random() < 0.6:
                w.t(referral, rm("resultedIn"), purchases[0])

        # a promise made in a campaign, enabled by training, kept or broken in an encounter
        if r.random() < 0.15:
            promise = self.new("promise")
            w.t(promise, RDF_TYPE, rm("Promise"))
            w.t(promise, rm("promisedBy"), firm)
            w.t(promise, rm("promisedTo"), cust)
            w.t(promise, rm("madeIn"), r.choice(self.campaigns[f]))
            w.t(promise, rm("enabledBy"), r.choice(self.trainings[f]))
            w.t(promise, rm("promiseStatement"), string(r.choice(PROMISES)))
            if interactions:
                kept = r.random() < 0.75
                w.t(promise, rm("keptIn" if kept else "brokenIn"), r.choice(interactions))

        if is_person and r.random() < 0.3:
            self.brand_relationship(w, f, cust)
        if is_person and r.random() < 0.2:
            membership = self.new("membership")
            w.t(membership, RDF_TYPE, rm("LoyaltyProgramMembership"))
            w.t(membership, rm("programMember"), cust)
            w.t(membership, rm("hostingOrganization"), firm)
            w.t(membership, rm("membershipNumber"), string(f"M{r.randrange(10**8):08d}"))
        if not is_person and r.random() < 0.4:
            self.opportunity(w, f, cust)

        self.customers[f].append(cust)
        if is_person:
            self.persons.append(cust)

    def brand_relationship(self, w: Writer, f: int, person: str) -> None:
        r = self.r
        brel = self.new("brand-relationship")
        form = r.choices(FOURNIER, FOURNIER_WEIGHTS)[0]
        w.t(brel, RDF_TYPE, rm(form))
        if form != "BrandRelationship":
            w.t(brel, RDF_TYPE, rm("BrandRelationship"))
        w.t(brel, rm("focalParty"), self.firms[f])
        w.t(brel, rm("counterparty"), person)
        w.t(brel, rm("withBrand"), r.choice(self.brands[f]))
        w.t(brel, rm("startDate"), date(self.day()))
        w.t(brel, rm("isVoluntary"), boolean(r.random() < 0.85))
        w.t(brel, rm("isPublic"), boolean(r.random() < 0.6))
        w.t(brel, rm("valence"), decimal(max(-1.0, min(1.0, r.gauss(0.4, 0.4)))))
        w.t(brel, rm("intensity"), self.score(0.5, 0.25))
        w.t(brel, rm("durationType"), rm("Enduring" if r.random() < 0.7 else "ShortTerm"))
        w.t(brel, rm("lovePassion"), self.score(0.5, 0.25))
        w.t(brel, rm("selfConnection"), self.score(0.5, 0.25))
        if r.random() < 0.4:
            w.t(brel, rm("usageFrequency"), self.score(0.5, 0.3))

    def opportunity(self, w: Writer, f: int, org: str) -> None:
        r = self.r
        opp = self.new("opportunity")
        w.t(opp, RDF_TYPE, rm("SalesOpportunity"))
        w.t(opp, RDFS_LABEL, string(f"Opportunity {self.next_id['opportunity']}"))
        w.t(opp, rm("currentStep"), rm(r.choice(STEPS)))
        for team in r.sample(self.teams[f], 2 if r.random() < 0.25 else 1):
            w.t(opp, rm("ownedBy"), team)
        w.t(opp, rm("sharedAccount"), org)
        w.t(opp, rm("sellingFirm"), self.firms[f])
        w.t(opp, rm("stepSince"), date(self.day(dt.date(2026, 1, 1))))
        w.t(opp, rm("opportunityValue"), decimal(r.lognormvariate(10.0, 1.0)))

    # -- the whole file ----------------------------------------------------------------------

    def run(self, w: Writer, target: int) -> None:
        self.preamble(w)
        i = 0
        while w.count < target:
            i += 1
            if i % 25 == 0:
                self.employee(w, self.pick_firm())
            elif i % 40 == 0:
                self.supplier(w, self.pick_firm())
            else:
                self.customer(w)
            size = len(w.block)
            if w.count + size > target:
                # keep the block only if that lands nearer the target than stopping here
                if w.count + size - target < target - w.count:
                    w.commit()
                else:
                    w.drop()
                break
            w.commit()
        # top up to the exact count with links between distinct pairs of customers
        # (person k knows person k+1: never a duplicate of the links written above,
        # which always point from a newer person to an older one)
        k = 0
        while w.count < target and k + 1 < len(self.persons):
            w.t(self.persons[k], rm("knows"), self.persons[k + 1])
            w.commit()
            k += 2


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    factor = 1
    if text.endswith("k"):
        factor, text = 1_000, text[:-1]
    elif text.endswith("m"):
        factor, text = 1_000_000, text[:-1]
    return int(float(text) * factor)


def generate(target: int, out: Path, seed: int = 42) -> int:
    """Writes about ``target`` triples (exactly, for any target ≥ a few hundred) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with open(tmp, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as fh:
        w = Writer(fh)
        Generator(seed).run(w, target)
    tmp.replace(out)
    return w.count


def validate(path: Path, ont_graph: bool = False) -> bool:
    """pyshacl against ontology/shapes.ttl with the ontology mixed in, as relmark loads data.

    By default the ontology is parsed into the data graph before validating, which is what
    pyshacl's ``ont_graph=`` is for (and what tests/unit/test_shapes.py does); ``ont_graph=True``
    makes the literal call (``validate(data, shacl_graph=shapes, ont_graph=rm+thirty-r,
    ...)``), which does not finish in practice: pyshacl's ontology mixing deep-clones every
    owl:NamedIndividual along its links, and rm:ThirtyR ↔ R1…R30 send it round and round
    (over 30 CPU-minutes without an answer here, whatever the size of the data).
    """
    import pyshacl
    import rdflib

    t0 = time.perf_counter()
    ontology = rdflib.Graph()
    for name in ("rm.ttl", "thirty-r.ttl"):
        ontology.parse(ROOT / "ontology" / name, format="turtle")
    shapes = rdflib.Graph().parse(ROOT / "ontology" / "shapes.ttl", format="turtle")
    if ont_graph:
        data = rdflib.Graph().parse(path, format="nt")
        extra = {"ont_graph": ontology}
    else:
        data = ontology
        data.parse(path, format="nt")
        extra = {}
    conforms, report, text = pyshacl.validate(
        data,
        shacl_graph=shapes,
        inference="none",
        advanced=True,
        allow_warnings=True,
        **extra,
    )
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    counts: dict[str, int] = {}
    for result in report.subjects(rdflib.RDF.type, sh.ValidationResult):
        severity = str(report.value(result, sh.resultSeverity)).rsplit("#", 1)[-1]
        counts[severity] = counts.get(severity, 0) + 1
    how = "ont_graph=" if ont_graph else "ontology parsed into the data graph"
    print(
        f"pyshacl ({how}): conforms={conforms} results={counts or 'none'} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    if not conforms or counts:
        print(text[:6000])
    return bool(conforms) and not counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triples", required=True, help="target count, e.g. 100000, 100k, 1M")
    ap.add_argument("--out", required=True, type=Path, help="N-Triples file to write")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--validate", action="store_true", help="check with pyshacl afterwards")
    ap.add_argument(
        "--ont-graph",
        action="store_true",
        help="with --validate: pass the ontology as pyshacl's ont_graph (slow, same result)",
    )
    args = ap.parse_args(argv)
    target = parse_size(args.triples)
    t0 = time.perf_counter()
    count = generate(target, args.out, args.seed)
    seconds = time.perf_counter() - t0
    off = (count - target) / target * 100 if target else 0.0
    print(
        f"wrote {count} triples ({off:+.2f}% of {target}) to {args.out} "
        f"({args.out.stat().st_size / 1e6:.1f} MB, {seconds:.1f} s)"
    )
    ok = abs(count - target) <= target * 0.01
    if args.validate:
        ok = validate(args.out, args.ont_graph) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
