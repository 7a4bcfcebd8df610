"""The rule engine: SPARQL CONSTRUCT rules gathered from files, ordered, applied to a fixpoint.

A rule is one ``ontology/rules/*.rq`` file: a header of ``# key: value`` comment lines and a
CONSTRUCT whose WHERE is a basic graph pattern with FILTER / FILTER NOT EXISTS / BIND and
aggregates in sub-selects (no OPTIONAL, UNION, MINUS, GRAPH, VALUES or property paths, so
the facts a conclusion rests on are exactly the WHERE's triple patterns, instantiated).

``materialise`` evaluates every rule over the asserted graphs, the ontology, the config and
what the rules inferred so far, until nothing new follows; then it writes the conclusions
to ``urn:relmark:inferred`` and, for every inferred triple, the derivation that concluded
it to ``urn:relmark:provenance`` (``provenance.py``). A full run recomputes from scratch
and writes only when the result differs; after a write, ``incremental.py`` re-evaluates
only the rules and resources the change can reach, with the same ``evaluate``.

Negation and aggregates must only look at asserted facts (or at conclusions of rules that
do not depend on them): the engine checks at the end that every conclusion is still
supported and refuses a rule set that breaks this.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from relmark.reasoning.provenance import (
    RULE_IRI_PREFIX,
    VARIABLE_IRI_PREFIX,
    Derivation,
    provenance_chunks,
    provenance_graph,
)
from relmark.stores.base import BulkPart, GraphBytes, Store
from relmark.vocab import INFERRED_GRAPH, META_GRAPH, ONTOLOGY_DIR, PROVENANCE_GRAPH, SHAPES_GRAPH

RULES_DIR = ONTOLOGY_DIR / "rules"

#: Graphs the rules never read: their own output, the shapes, bookkeeping.
NOT_RULE_INPUT = frozenset({INFERRED_GRAPH, PROVENANCE_GRAPH, SHAPES_GRAPH, META_GRAPH})

INFERRED_NODE = ox.NamedNode(INFERRED_GRAPH)

_VARIABLE_IRI = VARIABLE_IRI_PREFIX


class RuleError(Exception):
    """A rule file is malformed, or a rule set cannot be applied; names the file and line."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = "" if path is None else f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)


# --- reading a rule file ----------------------------------------------------------------

HEADER_KEYS = ("rule", "label", "label@it", "why", "why@it", "source")
REQUIRED_KEYS = ("rule", "label", "label@it", "why", "source")
_HEADER_LINE = re.compile(r"^#\s*([A-Za-z]+(?:@[A-Za-z-]+)?)\s*:\s*(.*?)\s*$")
_RULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Pattern:
    """One triple pattern: each position an RDF term or an ``ox.Variable``."""

    subject: ox.NamedNode | ox.Literal | ox.Variable
    predicate: ox.NamedNode | ox.Variable
    object: ox.NamedNode | ox.Literal | ox.Variable

    @functools.cached_property
    def _positions(self) -> tuple[tuple[str | None, object], ...]:
        """(variable name or None, fixed term) per position: read once per pattern, not
        once per solution (a million-triple run instantiates a million patterns)."""
        return tuple(
            (term.value, None) if isinstance(term, ox.Variable) else (None, term)
            for term in (self.subject, self.predicate, self.object)
        )

    def instantiate(self, row: Mapping[str, object]) -> ox.Triple | None:
        """The triple for one solution, or None where a variable is unbound or misplaced."""
        terms = []
        for name, term in self._positions:
            if name is not None:
                term = row.get(name)
                if term is None:
                    return None
            terms.append(term)
        try:
            return ox.Triple(*terms)
        except TypeError:  # e.g. a literal bound in subject position: CONSTRUCT skips it
            return None


@dataclass(frozen=True)
class SubSelect:
    """A sub-select of a rule: its grouping keys and the patterns it counts over."""

    keys: tuple[str, ...]
    select_sparql: str
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class Guard:
    """A ``FILTER NOT EXISTS`` of a rule: the rule applies where ``ask_sparql`` finds nothing.

    The engine checks guards itself, for batches of solutions with their values bound
    (``matches_sparql``; ``ask_sparql`` for one solution), instead of leaving them in the
    query: pyoxigraph evaluates a NOT EXISTS over the whole store before joining, which
    made some rules quadratic (21 s instead of 0.1 s on 100k triples).
    """

    ask_sparql: str
    patterns: tuple[Pattern, ...]
    variables: tuple[str, ...]
    prologue: str = ""
    body: str = ""  # the group inside NOT EXISTS { … }

    def matches_sparql(self, names: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
        """A query for the positions of the rows (values of ``names``) this guard matches.

        The values go in as a VALUES block written by pyoxigraph (``str`` of a term is
        its N-Triples form), each row with its position, so the guard is checked for many
        solutions in one query and each answer names its row exactly.

        A language-tagged value goes in as its text and its tag, compared in a FILTER:
        Virtuoso 7.2 loses the tag of such a literal in a VALUES block of several rows (so
        the guard would never match it). Other values stay bound directly (the fast join).
        """
        tagged = [i for i in range(len(names)) if any(_language(row[i]) for row in rows)]
        table_names, checks = [ROW_VARIABLE, *names], []
        for i in tagged:
            text, tag = f"{ROW_VARIABLE}_text_{names[i]}", f"{ROW_VARIABLE}_lang_{names[i]}"
            table_names += [text, tag]
            checks.append(
                f"(!BOUND(?{text}) || (isLiteral(?{names[i]}) && STR(?{names[i]}) = ?{text}"
                f" && LCASE(LANG(?{names[i]})) = ?{tag}))"
            )
        table = values_table(
            " ".join(f"?{name}" for name in table_names),
            (_row_terms(number, row, tagged) for number, row in enumerate(rows)),
        )
        condition = f"\nFILTER({' && '.join(checks)})\n" if checks else ""
        return (
            f"{self.prologue}\nSELECT DISTINCT ?{ROW_VARIABLE} WHERE {{ {table}\n{self.body}"
            f"{condition}}}"
        )


def _language(term: object) -> str | None:
    return term.language if isinstance(term, ox.Literal) else None


def _row_terms(number: int, row: tuple[object, ...], tagged: list[int]) -> list[object]:
    """A guard batch's row: a language-tagged value as UNDEF, then its text and its tag."""
    terms: list[object] = [number, *row]
    for i in tagged:
        language = _language(row[i])
        if language:
            terms[1 + i] = "UNDEF"
            terms += [ox.Literal(row[i].value), ox.Literal(language.lower())]
        else:
            terms += ["UNDEF", "UNDEF"]
    return terms


@dataclass(frozen=True)
class Rule:
    """One parsed rule file.

    ``select_sparql`` is the rule's WHERE as ``SELECT *``; ``match_sparql`` the same
    without its guards (checked per solution); ``reach_sparql`` finds the resources the
    rule might classify from its triple patterns alone, to know what a change touches.
    """

    name: str
    label: str
    label_it: str
    why: str
    why_it: str
    source: str
    sparql: str
    path: Path
    select_sparql: str
    conclusions: tuple[Pattern, ...]
    premises: tuple[Pattern, ...]
    subselects: tuple[SubSelect, ...] = ()
    focus: str = ""
    guards: tuple[Guard, ...] = ()
    match_sparql: str = ""
    reach_sparql: str = ""

    @property
    def iri(self) -> str:
        return RULE_IRI_PREFIX + self.name


def load_rules(directory: Path | str = RULES_DIR) -> list[Rule]:
    """Every ``*.rq`` rule in ``directory``, sorted by rule name (the file's stem)."""
    paths = sorted(Path(directory).glob("*.rq"), key=lambda path: path.stem)
    rules = [parse_rule(path) for path in paths]
    seen: dict[str, Path] = {}
    for rule in rules:
        if rule.name in seen:
            raise RuleError(f"rule name {rule.name!r} is also used by {seen[rule.name]}", rule.path)
        seen[rule.name] = rule.path
    return rules


def parse_rule(path: Path | str, text: str | None = None) -> Rule:
    """Parse one rule file: header, SPARQL syntax, the patterns of its template and WHERE."""
    path = Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    header = _parse_header(path, text)
    if header["rule"] != path.stem:
        raise RuleError(
            f"the rule is named {header['rule']!r} but the file is {path.name}; "
            "name the file after the rule",
            path,
            1,
        )
    _check_syntax(path, text)
    masked = _mask(text)
    construct = re.search(r"(?<![\w:?$])CONSTRUCT(?![\w:-])", masked, re.IGNORECASE)
    if construct is None:
        raise RuleError("a rule is a SPARQL CONSTRUCT query", path, _line(text, len(text)))
    prologue = text[: construct.start()]
    template_start = _skip_space(masked, construct.end())
    if masked[template_start : template_start + 1] != "{":
        raise RuleError("CONSTRUCT needs a template in braces", path, _line(text, template_start))
    template_end = _matching(masked, template_start, path, text)
    where = re.compile(r"\s*(WHERE\s*)?\{", re.IGNORECASE).match(masked, template_end)
    if where is None:
        raise RuleError("expected WHERE { … } after the template", path, _line(text, template_end))
    body_start = where.end() - 1
    body_end = _matching(masked, body_start, path, text)
    if masked[body_end:].strip():
        raise RuleError(
            "a rule has no solution modifiers after its WHERE (ORDER BY, LIMIT, …)",
            path,
            _line(text, body_end + len(masked[body_end:]) - len(masked[body_end:].lstrip())),
        )
    span = text[construct.start() : template_end]
    select_sparql = (
        text[: construct.start()] + "SELECT *" + "\n" * span.count("\n") + text[template_end:]
    )
    conclusions = _patterns(path, text, masked, prologue, [(template_start + 1, template_end - 1)])
    for pattern in conclusions:
        if any(isinstance(t, ox.BlankNode) for t in vars(pattern).values()):
            raise RuleError("blank nodes in a template would differ on every run", path)
    guard_spans: list[tuple[int, int, int]] = []
    bgp, subselects = _split_group(
        path, text, masked, body_start + 1, body_end - 1, nested=False, guards=guard_spans
    )
    premises = _patterns(path, text, masked, prologue, bgp)
    focus = _focus(path, conclusions)
    unguarded = text
    for filter_start, _, body_end_ in guard_spans:
        blank = "".join(c if c == "\n" else " " for c in text[filter_start : body_end_ + 1])
        unguarded = unguarded[:filter_start] + blank + unguarded[body_end_ + 1 :]
    match_sparql = (
        unguarded[: construct.start()]
        + "SELECT DISTINCT *"
        + "\n" * span.count("\n")
        + unguarded[template_end : body_start + 1]
        + VALUES_SLOT
        + unguarded[body_start + 1 :]
    )
    guards = tuple(_parse_guard(path, text, masked, prologue, g) for g in guard_spans)
    reach = " ".join(_pattern_text(p) for p in premises)
    return Rule(
        name=header["rule"],
        label=header["label"],
        label_it=header["label@it"],
        why=header["why"],
        why_it=header.get("why@it", ""),
        source=header["source"],
        sparql=text,
        path=path,
        select_sparql=select_sparql,
        conclusions=tuple(conclusions),
        premises=tuple(premises),
        subselects=tuple(
            _parse_subselect(path, text, masked, prologue, start, end) for start, end in subselects
        ),
        focus=focus,
        guards=guards,
        match_sparql=match_sparql,
        reach_sparql=f"{prologue}\nSELECT DISTINCT ?{focus} WHERE {{{VALUES_SLOT}{reach} }}",
    )


def _focus(path: Path, conclusions: list[Pattern]) -> str:
    """The one variable every template triple has as subject: what the rule classifies."""
    subjects = {p.subject.value for p in conclusions if isinstance(p.subject, ox.Variable)}
    if len(subjects) != 1 or any(not isinstance(p.subject, ox.Variable) for p in conclusions):
        raise RuleError(
            "every triple of a rule's template must have the same variable as subject "
            "(the resource the rule classifies)",
            path,
        )
    return subjects.pop()


def _parse_guard(
    path: Path, text: str, masked: str, prologue: str, span: tuple[int, int, int]
) -> Guard:
    """A FILTER NOT EXISTS: an ASK run per solution, with the solution's values bound."""
    _, start, end = span
    spans, _ = _split_group(path, text, masked, start, end, nested=True)
    variables = tuple(sorted(set(_VARIABLE.findall(masked[start:end]))))
    projection = " ".join(f"?{v}" for v in variables)
    return Guard(
        # SELECT, not ASK: pyoxigraph binds only projected variables (filters included).
        ask_sparql=(
            f"{prologue}\nSELECT {projection} WHERE {{{VALUES_SLOT}{text[start:end]}}} LIMIT 1"
        ),
        patterns=tuple(_patterns(path, text, masked, prologue, spans)),
        variables=variables,
        prologue=prologue,
        body=text[start:end],
    )


def _pattern_text(pattern: Pattern) -> str:
    return f"{pattern.subject} {pattern.predicate} {pattern.object} ."


def _parse_header(path: Path, text: str) -> dict[str, str]:
    """The leading ``# key: value`` lines; the header ends at the first other line."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    end_line = 1
    for number, line in enumerate(lines, start=1):
        end_line = number
        match = _HEADER_LINE.match(line)
        if match is None:
            break
        key, value = match.group(1).lower(), match.group(2)
        if key not in HEADER_KEYS:
            raise RuleError(
                f"unknown header key {key!r} (expected {', '.join(HEADER_KEYS)})", path, number
            )
        if key in header:
            raise RuleError(f"header key {key!r} given twice", path, number)
        if not value:
            raise RuleError(f"header key {key!r} has no value", path, number)
        header[key] = value
    else:
        end_line = len(lines) + 1
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise RuleError(
            f"the header lacks {', '.join('# ' + key + ':' for key in missing)} "
            "(the header is the leading block of '# key: value' lines)",
            path,
            end_line,
        )
    if not _RULE_NAME.match(header["rule"]):
        raise RuleError(
            f"rule name {header['rule']!r} is not IRI-safe (letters, digits, '-', '_')", path, 1
        )
    return header


def _check_syntax(path: Path, text: str) -> None:
    """Let pyoxigraph parse the query; report its error at the file's line."""
    try:
        ox.Store().query(text)
    except SyntaxError as error:
        message = str(error)
        match = re.search(r"at (\d+):(\d+)", message)
        line = int(match.group(1)) if match else None
        raise RuleError(f"SPARQL syntax error: {message}", path, line) from error


# --- a small scanner: braces and keywords outside strings, IRIs and comments -------------

_IRI = re.compile(r"<[^<>\"{}|^`\\\x00-\x20]*>")
_STRING = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'",
    re.DOTALL,
)
_KEYWORD = re.compile(
    r"(?<![\w:?$-])(FILTER|BIND|OPTIONAL|UNION|MINUS|GRAPH|SERVICE|VALUES)(?![\w:-])",
    re.IGNORECASE,
)
_VARIABLE = re.compile(r"[?$]([A-Za-z0-9_][A-Za-z0-9_]*)")


def _mask(text: str) -> str:
    """``text`` with comments, strings and IRIs blanked out, positions and newlines kept."""
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "#":
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            out.append(" " * (end - i))
            i = end
            continue
        match = None
        if char in "\"'":
            match = _STRING.match(text, i)
        elif char == "<":
            match = _IRI.match(text, i)
        if match:
            out.append("".join("\n" if c == "\n" else "_" for c in match.group(0)))
            i = match.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _skip_space(masked: str, position: int) -> int:
    while position < len(masked) and masked[position].isspace():
        position += 1
    return position


def _matching(masked: str, start: int, path: Path, text: str) -> int:
    """The position after the bracket closing the one at ``start``."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    if masked[start : start + 1] not in pairs:
        raise RuleError("expected '(' or '{' here", path, _line(text, start))
    stack = []
    for position in range(start, len(masked)):
        char = masked[position]
        if char in pairs:
            stack.append(pairs[char])
        elif char in pairs.values():
            if not stack or stack.pop() != char:
                raise RuleError(f"unbalanced {char!r}", path, _line(text, position))
            if not stack:
                return position + 1
    raise RuleError(f"{masked[start]!r} is never closed", path, _line(text, start))


def _split_group(
    path: Path,
    text: str,
    masked: str,
    start: int,
    end: int,
    *,
    nested: bool,
    guards: list[tuple[int, int, int]] | None = None,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split a group's content into triple-pattern spans and sub-select spans.

    FILTER and BIND are skipped (a filter is a condition, not a premise); anything that
    would make the premises ambiguous (OPTIONAL, UNION, …) is refused. Each
    ``FILTER NOT EXISTS { … }`` is appended to ``guards`` as (filter start, body start,
    body end) when a list is given.
    """
    triples: list[tuple[int, int]] = []
    subselects: list[tuple[int, int]] = []
    position = start
    while True:
        position = _skip_space(masked, position)
        if position >= end:
            return triples, subselects
        keyword = _KEYWORD.match(masked, position)
        if keyword:
            word = keyword.group(1).upper()
            if word not in ("FILTER", "BIND"):
                raise RuleError(
                    f"{word} is not allowed in a rule: keep the WHERE a basic graph pattern "
                    "with FILTER, FILTER NOT EXISTS, BIND and aggregates in sub-selects",
                    path,
                    _line(text, position),
                )
            position = _skip_space(masked, keyword.end())
            exists = re.compile(r"(NOT\s+)?EXISTS\s*", re.IGNORECASE).match(masked, position)
            if word == "FILTER" and exists:
                filter_start = keyword.start()
                body = exists.end()
                position = _matching(masked, body, path, text)
                if guards is not None and exists.group(1):
                    guards.append((filter_start, body + 1, position - 1))
            else:
                call = re.compile(r"[\w:]*\s*").match(masked, position)
                position = _matching(masked, call.end(), path, text)
            continue
        if masked[position] == "{":
            close = _matching(masked, position, path, text)
            inner = masked[position + 1 : close - 1]
            if nested or not re.match(r"\s*SELECT\b", inner, re.IGNORECASE):
                raise RuleError(
                    "a nested group is only allowed as a sub-select, one level deep",
                    path,
                    _line(text, position),
                )
            subselects.append((position + 1, close - 1))
            position = close
            continue
        stop = end
        for candidate in (_KEYWORD.search(masked, position, end), masked.find("{", position, end)):
            if isinstance(candidate, re.Match):
                stop = min(stop, candidate.start())
            elif isinstance(candidate, int) and candidate != -1:
                stop = min(stop, candidate)
        triples.append((position, stop))
        position = stop


def _parse_subselect(
    path: Path, text: str, masked: str, prologue: str, start: int, end: int
) -> SubSelect:
    """A sub-select: its plain projected variables are the keys joined with the outside."""
    select = re.compile(r"\s*SELECT\s+(DISTINCT\s+|REDUCED\s+)?", re.IGNORECASE).match(
        masked, start
    )
    brace = masked.find("{", select.end(), end)
    projection = masked[select.end() : brace]
    projection = re.sub(r"\bWHERE\s*$", "", projection.strip(), flags=re.IGNORECASE)
    plain = []
    depth = 0
    for char_position, char in enumerate(projection):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char in "?$":
            match = _VARIABLE.match(projection, char_position)
            if match:
                plain.append(match.group(1))
    body_end = _matching(masked, brace, path, text)
    triples, _ = _split_group(path, text, masked, brace + 1, body_end - 1, nested=True)
    patterns = _patterns(path, text, masked, prologue, triples)
    if projection.strip() == "*":
        plain = sorted({v.value for p in patterns for v in vars(p).values() if is_variable(v)})
    inner = text[brace:body_end]
    return SubSelect(
        keys=tuple(plain),
        select_sparql=f"{prologue}\nSELECT DISTINCT * WHERE {{{VALUES_SLOT}{inner[1:]}",
        patterns=tuple(patterns),
    )


def is_variable(term: object) -> bool:
    return isinstance(term, ox.Variable)


def _patterns(
    path: Path, text: str, masked: str, prologue: str, spans: Iterable[tuple[int, int]]
) -> list[Pattern]:
    """Parse triple-pattern text as Turtle, variables standing in as placeholder IRIs.

    The prologue (comments and PREFIX/BASE lines) is valid Turtle as it stands.
    """
    patterns: list[Pattern] = []
    for start, end in spans:
        chunk, chunk_masked = text[start:end], masked[start:end]
        pieces = []
        last = 0
        for match in _VARIABLE.finditer(chunk_masked):
            pieces.append(chunk[last : match.start()])
            pieces.append(f"<{_VARIABLE_IRI}{match.group(1)}>")
            last = match.end()
        pieces.append(chunk[last:])
        body = "".join(pieces).strip()
        body = body.lstrip(".").rstrip()
        while body.endswith("."):
            body = body[:-1].rstrip()
        if not body:
            continue
        document = f"{prologue}\n{body} .\n"
        try:
            triples = list(ox.parse(input=document.encode("utf-8"), format=ox.RdfFormat.TURTLE))
        except SyntaxError as error:
            raise RuleError(
                "not plain triple patterns (no property paths, blank nodes or lists "
                f"in a rule): {error}",
                path,
                _line(text, start),
            ) from error
        for quad in triples:
            terms = []
            for term in (quad.subject, quad.predicate, quad.object):
                if isinstance(term, ox.BlankNode):
                    raise RuleError("blank nodes are not allowed in rule patterns", path)
                if isinstance(term, ox.NamedNode) and term.value.startswith(_VARIABLE_IRI):
                    term = ox.Variable(term.value[len(_VARIABLE_IRI) :])
                terms.append(term)
            patterns.append(Pattern(*terms))
    return patterns


# --- applying the rules ---------------------------------------------------------------

#: Runs a query over the rule inputs with some variables bound; returns pyoxigraph results.
Query = Callable[[str, Mapping[ox.Variable, object]], object]

#: Where the engine's own queries take a VALUES row (a comment until then).
VALUES_SLOT = "\n#relmark:values\n"


def bind_values(
    sparql: str, bound: Mapping[ox.Variable, object]
) -> tuple[str, dict[ox.Variable, object]]:
    """Bind IRIs and literals through a VALUES row at ``VALUES_SLOT``; the rest stay
    substitutions.

    pyoxigraph's query planner does not see substituted variables as bound, so a pattern
    joined on one can scan a whole predicate (6 ms where VALUES takes 0.05 ms on 100k
    triples). The terms are written in their own N-Triples form by pyoxigraph, never
    built from text, so a value cannot change the query; blank nodes and triple terms,
    which VALUES cannot hold, stay substitutions.
    """
    if not bound or VALUES_SLOT not in sparql:
        return sparql, dict(bound)
    inline = {v: t for v, t in bound.items() if isinstance(t, ox.NamedNode | ox.Literal)}
    if not inline:
        return sparql, dict(bound)
    names = " ".join(str(v) for v in inline)
    values = "\n" + values_table(names, [tuple(inline.values())]) + "\n"
    rest = {v: t for v, t in bound.items() if v not in inline}
    return sparql.replace(VALUES_SLOT, values, 1), rest


def values_table(names: str, rows: Iterable[Iterable[object]]) -> str:
    """``VALUES (names) { (row) … }`` with each term in its own N-Triples form (``str`` of a
    pyoxigraph term; a Python int for a row number): values are never pasted from text."""
    body = " ".join("(" + " ".join(str(t) for t in row) + ")" for row in rows)
    return f"VALUES ({names}) {{ {body} }}"


def evaluate(query: Query, rule: Rule, focus: object | None = None) -> list[Derivation]:
    """The rule's derivations, one per distinct conclusion: the least bindings win.

    One derivation is enough to explain a conclusion, and choosing the least bindings
    makes a full run and an incremental update record the same one. ``focus`` restricts
    the rule to one resource (the subject of its conclusions).
    """
    bound = {} if focus is None else {ox.Variable(rule.focus): focus}
    solutions = query(rule.match_sparql, bound)
    names = [v.value for v in solutions.variables]
    rows: list[tuple[tuple[ox.Triple, ...], dict]] = []
    for solution in solutions:
        row = {n: value for n, value in zip(names, solution, strict=True) if value is not None}
        if focus is not None:
            row[rule.focus] = focus
        conclusions = tuple(
            dict.fromkeys(c for c in (p.instantiate(row) for p in rule.conclusions) if c)
        )
        if conclusions:
            rows.append((conclusions, row))
    blocked = _blocked(query, rule, [row for _, row in rows])
    # conclusions -> [its least bindings as text, or None while only one row concluded it;
    # that row] (most conclusions have one row: the text is made only when a second comes)
    best: dict[tuple[ox.Triple, ...], list] = {}
    for number, (conclusions, row) in enumerate(rows):
        if number in blocked:
            continue
        entry = best.get(conclusions)
        if entry is None:
            best[conclusions] = [None, row]
            continue
        if entry[0] is None:
            entry[0] = _order(entry[1])
        order = _order(row)
        if order < entry[0]:
            best[conclusions] = [order, row]
    derivations = []
    for conclusions, (_, row) in best.items():
        premises = [p.instantiate(row) for p in rule.premises]
        for subselect in rule.subselects:
            premises += _subselect_premises(query, subselect, row)
        premise_set = tuple(dict.fromkeys(p for p in premises if p is not None))
        kept = tuple(c for c in conclusions if c not in premise_set)
        if kept:
            bindings = tuple(sorted(row.items()))
            derivations.append(Derivation(rule, bindings, premise_set, kept))
    return derivations


def _order(row: Mapping[str, object]) -> str:
    return "\n".join(f"{name}={row[name]}" for name in sorted(row))


#: Solutions checked against a guard per query (the VALUES block of one query).
GUARD_BATCH = 1000
#: The variable numbering those solutions (no rule may use it).
ROW_VARIABLE = "relmark_guard_row"


def _blocked(query: Query, rule: Rule, rows: list[dict]) -> set[int]:
    """The rows (by position) for which one of the rule's FILTER NOT EXISTS finds a match.

    Each guard is asked once per batch of distinct values it reads, not once per solution:
    on the 1M-triple data the per-solution questions took 16 s of a 97 s run.
    """
    blocked: set[int] = set()
    for guard in rule.guards:
        # rows grouped by which of the guard's variables they bind, then by their values
        groups: dict[tuple[str, ...], dict[tuple, list[int]]] = {}
        for number, row in enumerate(rows):
            if number not in blocked:
                names = tuple(v for v in guard.variables if v in row)
                values = tuple(row[v] for v in names)
                groups.setdefault(names, {}).setdefault(values, []).append(number)
        for names, by_values in groups.items():
            for values in _guard_matches(query, guard, names, list(by_values)):
                blocked.update(by_values[values])
    return blocked


def _guard_matches(
    query: Query, guard: Guard, names: tuple[str, ...], candidates: list[tuple]
) -> set[tuple]:
    """The candidate value tuples (of ``names``) for which ``guard`` finds a match."""
    if not names:
        return set(candidates) if next(iter(query(guard.ask_sparql, {})), None) else set()
    inline = [v for v in candidates if all(isinstance(t, ox.NamedNode | ox.Literal) for t in v)]
    found: set[tuple] = set()
    for start in range(0, len(inline), GUARD_BATCH):
        batch = inline[start : start + GUARD_BATCH]
        for solution in query(guard.matches_sparql(names, batch), {}):
            found.add(batch[int(solution[ROW_VARIABLE].value)])
    if len(inline) < len(candidates):  # blank nodes cannot be written in VALUES: one by one
        for values in set(candidates).difference(inline):
            bound = {ox.Variable(name): value for name, value in zip(names, values, strict=True)}
            if next(iter(query(guard.ask_sparql, bound)), None) is not None:
                found.add(values)
    return found


def _subselect_premises(
    query: Query, subselect: SubSelect, row: Mapping[str, object]
) -> list[ox.Triple | None]:
    """The facts a sub-select aggregated for this solution's group."""
    keys = {ox.Variable(key): row[key] for key in subselect.keys if key in row}
    solutions = query(subselect.select_sparql, keys)
    names = [v.value for v in solutions.variables]
    premises: list[ox.Triple | None] = []
    for solution in solutions:
        inner = {name: solution[name] for name in names if solution[name] is not None}
        premises += [p.instantiate(inner) for p in subselect.patterns]
    return premises


@dataclass
class RunSummary:
    """What a run did, for machines (fields) and people (``text``)."""

    rules: int
    rounds: int
    inferred: int
    derivations: int
    provenance: int
    added: int
    removed: int
    written: bool
    seconds: float
    by_rule: dict[str, int] = field(default_factory=dict)
    incremental: bool = False

    @classmethod
    def of_run(
        cls,
        rules: list[Rule],
        rounds: int,
        inferred: set[ox.Triple],
        derivations: list[Derivation],
        provenance: set[str] | int,
        written: tuple[int, int, bool],
        started: float,
    ) -> RunSummary:
        """The summary of a full run that started at ``started`` (``time.perf_counter``)."""
        by_rule: dict[str, int] = {rule.name: 0 for rule in rules}
        for derivation in derivations:
            by_rule[derivation.rule.name] += 1
        added, removed, changed = written
        return cls(
            rules=len(rules),
            rounds=rounds,
            inferred=len(inferred),
            derivations=len(derivations),
            provenance=provenance if isinstance(provenance, int) else len(provenance),
            added=added,
            removed=removed,
            written=changed,
            seconds=time.perf_counter() - started,
            by_rule=by_rule,
        )

    @property
    def text(self) -> str:
        if self.incremental:
            head = (
                f"incremental update, {self.rounds} rounds, {self.seconds:.2f} s: "
                f"+{self.added} −{self.removed} inferred triples, "
                f"{self.derivations} derivations re-evaluated"
            )
        else:
            head = (
                f"{self.rules} rules, {self.rounds} rounds, {self.seconds:.2f} s: "
                f"{self.inferred} inferred triples from {self.derivations} derivations "
                f"(+{self.added} −{self.removed} since the last run"
                f"{'' if self.written else ', nothing written'})"
            )
        lines = [head]
        for name, count in sorted(self.by_rule.items()):
            lines.append(f"  {name}: {count}")
        return "\n".join(lines)


#: One run at a time per process: runs read and write the same two graphs.
ONE_RUN_AT_A_TIME = threading.Lock()


def materialise(store: Store, rules: list[Rule]) -> RunSummary:
    """Infer everything the rules allow, with provenance; write only what changed.

    Full recompute: inferences are rebuilt from the asserted graphs, the ontology and the
    config, so data removed since the last run takes its conclusions with it. The rule
    inputs are copied into an in-memory store for the fixpoint (many small queries run
    an order of magnitude faster there, and readers of ``store`` never see a half-done
    result); the outcome is written back in one all-or-none replace.
    """
    with ONE_RUN_AT_A_TIME, _no_cycle_collection():
        started = time.perf_counter()
        work = _workspace(store)

        def query(sparql: str, bound: Mapping[ox.Variable, object]) -> object:
            sparql, rest = bind_values(sparql, bound)
            # the union of the distinct facts (default graph) and what was inferred so far
            # (its own graph, which never holds a fact of the default graph)
            return work.query(sparql, use_default_graph_as_union=True, substitutions=rest)

        rounds, inferred, derivations = fixpoint(
            rules,
            query,
            asserted=lambda candidates: {t for t in candidates if _fact(t) in work},
            add=lambda new: work.extend(
                ox.Quad(t.subject, t.predicate, t.object, INFERRED_NODE) for t in new
            ),
        )
        derivations = keep_inferred(derivations, inferred)
        premises = {p for d in derivations for p in d.premises}  # shared by many: once each
        locations = locate_facts(store, premises - inferred)
        old_inferred = {_triple(q) for q in store.triples(INFERRED_GRAPH)}
        if old_inferred != inferred:  # the provenance changes too: write it as it is made
            chunks = provenance_chunks(rules, derivations, locations)
            written, lines = _write_as_made(store, inferred, old_inferred, chunks)
            return RunSummary.of_run(rules, rounds, inferred, derivations, lines, written, started)
        provenance = provenance_graph(rules, derivations, locations)
        written = _write(store, inferred, provenance)
        return RunSummary.of_run(rules, rounds, inferred, derivations, provenance, written, started)


def fixpoint(
    rules: list[Rule],
    query: Query,
    asserted: Callable[[set[ox.Triple]], set[ox.Triple]],
    add: Callable[[set[ox.Triple]], None],
) -> tuple[int, set[ox.Triple], list[Derivation]]:
    """Evaluate the rules round after round until nothing new follows.

    ``query`` reads the rule inputs plus what ``add`` was given so far; ``asserted`` says
    which conclusions an input graph already holds (those are not inferences). Semi-naive:
    after round 1 only the rules that read a conclusion that just appeared run again.
    Returns the rounds, the inferred triples and the last derivations of every rule, whose
    support has been checked. Shared by the embedded and the remote engine.
    """
    inferred: set[ox.Triple] = set()
    known: set[ox.Triple] = set()  # conclusions found asserted
    readers = _readers(rules)
    latest: dict[str, list[Derivation]] = {}
    due = list(rules)
    rounds = 0
    derivations: list[Derivation] = []
    while due:
        rounds += 1
        for rule in due:
            latest[rule.name] = evaluate(query, rule)
        derivations = [d for rule in rules for d in latest.get(rule.name, [])]
        candidates = {c for d in derivations for c in d.conclusions} - inferred - known
        known |= asserted(candidates) if candidates else set()
        new = candidates - known
        inferred |= new
        if new:
            add(new)
        grown = {d.rule.name for d in derivations if any(c in new for c in d.conclusions)}
        due = [rule for rule in rules if readers[rule.name] & grown]
    _check_supported(inferred, derivations)
    return rounds, inferred, derivations


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector for a full run.

    A run makes millions of short-lived rows, triples and lines and no reference cycles;
    each collection walks every live container, so at 1M triples the collector cost
    ~8 s of a 65 s run (rule evaluation 18.4 s with it, 12.1 s without). Reference counting
    still frees everything; the collector resumes (and catches up) when the run ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _readers(rules: list[Rule]) -> dict[str, set[str]]:
    """For each rule, the rules whose conclusions one of its patterns could match."""
    return {
        rule.name: {
            other.name
            for other in rules
            if any(
                _may_match(pattern, conclusion)
                for pattern in patterns_read(rule)
                for conclusion in other.conclusions
            )
        }
        for rule in rules
    }


def patterns_read(rule: Rule) -> list[Pattern]:
    """Every triple pattern a rule reads: its WHERE, its guards and its sub-selects."""
    patterns = list(rule.premises)
    for guard in rule.guards:
        patterns += guard.patterns
    for subselect in rule.subselects:
        patterns += subselect.patterns
    return patterns


def _may_match(one: Pattern, other: Pattern) -> bool:
    return all(
        isinstance(a, ox.Variable) or isinstance(b, ox.Variable) or a == b
        for a, b in (
            (one.subject, other.subject),
            (one.predicate, other.predicate),
            (one.object, other.object),
        )
    )


def rule_inputs(store: Store) -> list[str | None]:
    """The graphs the rules read: the default graph, then every named graph but their own
    output, the shapes and the bookkeeping (in name order)."""
    return [None, *(g for g in store.graph_names() if g not in NOT_RULE_INPUT)]


def _workspace(store: Store) -> ox.Store:
    """An in-memory store holding each fact of the rule inputs once, in its default graph.

    The rules see facts, not where they were stated: with each input graph kept as its
    own graph, a query over their union found one solution per copy of each premise, so
    a rule of k patterns over facts held in N graphs made N^k solutions for one
    conclusion (bank.ttl under 3 graph names: 35 s and 4.2 GB; under 4, 212 s and 17.4 GB
    before it was killed). A store is a set, so loading every graph into one default
    graph keeps one copy of each fact. Which graphs hold a premise is looked up once,
    at the end, for the provenance (``locate_facts``).
    """
    work = ox.Store()
    export = store.graph_bytes if isinstance(store, GraphBytes) else None
    stated = 0  # facts counted once per graph stating them
    for graph in rule_inputs(store):
        if export is None:
            quads = [_fact(_triple(q)) for q in store.triples(graph)]
            stated += len(quads)
            work.bulk_extend(quads)
            continue
        data = export(graph)
        stated += data.count(b"\n")
        if b"_:" in data:
            # blank nodes: keep the store's own identifiers (pyoxigraph's loader renames
            # them per load), so a node named in two graphs stays one node here, and the
            # provenance names the node the store holds
            parsed = ox.parse(data, format=ox.RdfFormat.N_TRIPLES, lenient=True)
            work.bulk_extend(_fact(_triple(q)) for q in parsed)
        else:
            # lenient: pyoxigraph wrote these bytes itself, no need to validate IRIs again
            work.bulk_load(data, format=ox.RdfFormat.N_TRIPLES, lenient=True)
    with contextlib.suppress(TypeError):  # a store that cannot be weakly referenced
        SHARED_FACTS[store] = stated > len(work)
    return work


#: Whether some fact is stated in two input graphs of a store, as last found (by a full
#: run's ``_workspace`` for free, or by the incremental engine). Only speed depends on it.
SHARED_FACTS: weakref.WeakKeyDictionary[object, bool] = weakref.WeakKeyDictionary()


def distinct_workspace(store: Store, with_inferred: bool = False) -> ox.Store:
    """``_workspace`` for other engines, with the inferred graph as its own graph if asked
    (the incremental engine reads the inferences of the last run, the full run makes its
    own)."""
    work = _workspace(store)
    if with_inferred:
        data = store.graph_bytes(INFERRED_GRAPH) if isinstance(store, GraphBytes) else None
        if data is None or b"_:" in data:
            work.bulk_extend(
                ox.Quad(q.subject, q.predicate, q.object, INFERRED_NODE)
                for q in store.triples(INFERRED_GRAPH)
            )
        else:
            work.bulk_load(
                data, format=ox.RdfFormat.N_TRIPLES, to_graph=INFERRED_NODE, lenient=True
            )
    return work


def _fact(triple: ox.Triple) -> ox.Quad:
    """A fact as the workspace holds it: in its default graph."""
    return ox.Quad(triple.subject, triple.predicate, triple.object)


def locate_facts(store: Store, facts: Iterable[ox.Triple]) -> dict[ox.Triple, list[str | None]]:
    """For each of ``facts``, every input graph stating it (None: the default graph), in
    the order of ``rule_inputs``; [] for a fact no input graph states (an inferred one).

    One pass over the input graphs, each as the N-Triples pyoxigraph writes in Rust,
    matched line by line against the facts written the same way (``str`` of a pyoxigraph
    term is its N-Triples form; ``stored_lines`` relies on that too): no query per fact,
    and the cost is one read of the inputs whatever number of facts the run used.
    """
    wanted = {f"{t} .".encode(): t for t in facts}
    found: dict[ox.Triple, list[str | None]] = {t: [] for t in wanted.values()}
    if not wanted:
        return found
    export = store.graph_bytes if isinstance(store, GraphBytes) else None
    for graph in rule_inputs(store):
        if export is None:
            for quad in store.triples(graph):
                triple = _triple(quad)
                if triple in found:
                    found[triple].append(graph)
            continue
        for line in export(graph).split(b"\n"):
            triple = wanted.get(line)
            if triple is not None:
                found[triple].append(graph)
    for triple in [t for t, graphs in found.items() if not graphs]:
        # not written as the serialiser writes it (never seen, but a premise recorded as
        # inferred when it is stated would have no explanation): asked one by one
        found[triple] = _graphs_stating(store, triple)
    return found


def _graphs_stating(store: Store, triple: ox.Triple) -> list[str | None]:
    """The input graphs stating one fact, by query."""
    terms = {"s": triple.subject, "p": triple.predicate, "o": triple.object}
    inputs = rule_inputs(store)
    found: list[str | None] = []
    if store.query("ASK { ?s ?p ?o }", default_graph=[None], substitutions=terms):
        found.append(None)
    solutions = store.query(
        "SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", named_graphs=inputs[1:], substitutions=terms
    )
    named = {s["g"].value for s in solutions}
    return found + [g for g in inputs[1:] if g in named]


def _check_supported(inferred: set[ox.Triple], derivations: list[Derivation]) -> None:
    """Every conclusion must still follow at the fixpoint (no negation of inferred facts)."""
    supported = {c for d in derivations for c in d.conclusions}
    lost = inferred - supported
    if lost:
        example = sorted(str(t) for t in lost)[0]
        raise RuleError(
            f"{len(lost)} inferred triples no longer follow at the fixpoint (e.g. {example}): "
            "a rule negates or counts facts that other rules infer"
        )


def keep_inferred(derivations: list[Derivation], inferred: set[ox.Triple]) -> list[Derivation]:
    """Derivations reduced to their inferred conclusions (asserted ones need no reason)."""
    kept: dict[str, Derivation] = {}
    for derivation in derivations:
        conclusions = tuple(c for c in derivation.conclusions if c in inferred)
        if conclusions:
            kept.setdefault(
                derivation.iri,
                Derivation(derivation.rule, derivation.bindings, derivation.premises, conclusions),
            )
    return [kept[iri] for iri in sorted(kept)]


def _write(store: Store, inferred: set[ox.Triple], provenance: set[str]) -> tuple[int, int, bool]:
    """Replace the inferred and provenance graphs, all or none, only if they changed.

    ``provenance`` is N-Triples lines (``provenance.py``), compared with the stored graph
    as lines and loaded by pyoxigraph's bulk loader. Returns the inferred triples added
    and removed, and whether anything was written.
    """
    old_inferred = {_triple(q) for q in store.triples(INFERRED_GRAPH)}
    if old_inferred == inferred and stored_lines(store, PROVENANCE_GRAPH) == provenance:
        return 0, 0, False
    node = ox.NamedNode(INFERRED_GRAPH)
    quads = [ox.Quad(t.subject, t.predicate, t.object, node) for t in inferred]
    body = "\n".join(provenance).encode("utf-8")
    store.bulk_replace_graphs(
        {
            INFERRED_GRAPH: [("quads", quads, INFERRED_GRAPH)] if quads else [],
            PROVENANCE_GRAPH: [(ox.RdfFormat.N_TRIPLES, body, PROVENANCE_GRAPH)] if body else [],
        }
    )
    return len(inferred - old_inferred), len(old_inferred - inferred), True


def _write_as_made(
    store: Store,
    inferred: set[ox.Triple],
    old_inferred: set[ox.Triple],
    chunks: Iterator[list[str]],
) -> tuple[tuple[int, int, bool], int]:
    """Replace the inferred and provenance graphs, all or none, while the provenance lines
    are still being made: a thread makes the next chunk while pyoxigraph's bulk loader,
    which releases the GIL, loads the last one (1M triples: 7 s of making lines overlap the
    ~25 s of loading 2.2M of them). Returns what ``_write`` does, and the line count.
    """
    made: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()
    count = 0

    def make() -> None:
        nonlocal count
        try:
            with _no_cycle_collection():
                for chunk in chunks:
                    count += len(chunk)
                    made.put("\n".join(chunk).encode("utf-8"))
        except BaseException as error:  # handed to the writer, which undoes the write
            made.put(error)
        else:
            made.put(None)

    def parts() -> Iterator[BulkPart]:
        while (item := made.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield (ox.RdfFormat.N_TRIPLES, item, PROVENANCE_GRAPH)

    maker = threading.Thread(target=make, name="relmark-provenance", daemon=True)
    maker.start()
    node = ox.NamedNode(INFERRED_GRAPH)
    quads = [ox.Quad(t.subject, t.predicate, t.object, node) for t in inferred]
    store.bulk_replace_graphs(
        {
            INFERRED_GRAPH: [("quads", quads, INFERRED_GRAPH)] if quads else [],
            PROVENANCE_GRAPH: parts(),
        }
    )
    maker.join()
    return (len(inferred - old_inferred), len(old_inferred - inferred), True), count


def stored_lines(store: Store, graph: str) -> set[str]:
    """A stored graph as N-Triples lines (serialised in Rust where the store can)."""
    if isinstance(store, GraphBytes):
        return set(filter(None, store.graph_bytes(graph).decode("utf-8").split("\n")))
    return {f"{q.subject} {q.predicate} {q.object} ." for q in store.triples(graph)}


def _triple(quad: ox.Quad) -> ox.Triple:
    return ox.Triple(quad.subject, quad.predicate, quad.object)
