"""Reading rule files: the header, the CONSTRUCT's template and WHERE, as a ``Rule``.

A rule is one ``ontology/rules/*.rq`` file: a header of ``# key: value`` comment lines and a
CONSTRUCT whose WHERE is a basic graph pattern with FILTER / FILTER NOT EXISTS / BIND and
aggregates in sub-selects (no OPTIONAL, UNION, MINUS, GRAPH, VALUES or property paths, so
the facts a conclusion rests on are exactly the WHERE's triple patterns, instantiated).
pyoxigraph checks the SPARQL; this module only finds the parts the engine needs, and
refuses what would make a conclusion's premises ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import pyoxigraph as ox

from relmark.reasoning.rules.model import (
    VALUES_SLOT,
    Guard,
    Pattern,
    Rule,
    RuleError,
    SubSelect,
    is_variable,
)
from relmark.reasoning.rules.provenance import VARIABLE_IRI_PREFIX
from relmark.sparql import lexer
from relmark.vocab import ONTOLOGY_DIR, REFERENCES

RULES_DIR = ONTOLOGY_DIR / "rules"

_VARIABLE_IRI = VARIABLE_IRI_PREFIX


HEADER_KEYS = ("rule", "label", "label@it", "why", "why@it", "source")


REQUIRED_KEYS = ("rule", "label", "label@it", "why", "source")


_HEADER_LINE = re.compile(r"^#\s*([A-Za-z]+(?:@[A-Za-z-]+)?)\s*:\s*(.*?)\s*$")


_RULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


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
    parts = _outline(path, text, masked)
    prologue = text[: parts.construct]
    lines = "\n" * text.count("\n", parts.construct, parts.template_end)
    select_sparql = prologue + "SELECT *" + lines + text[parts.template_end :]
    template = [(parts.template_start + 1, parts.template_end - 1)]
    conclusions = _patterns(path, text, masked, prologue, template)
    for pattern in conclusions:
        if any(isinstance(t, ox.BlankNode) for t in vars(pattern).values()):
            raise RuleError("blank nodes in a template would differ on every run", path)
    guard_spans: list[tuple[int, int, int]] = []
    bgp, subselects = _split_group(
        path,
        text,
        masked,
        parts.body_start + 1,
        parts.body_end - 1,
        nested=False,
        guards=guard_spans,
    )
    premises = _patterns(path, text, masked, prologue, bgp)
    focus = _focus(path, conclusions)
    unguarded = _without_guards(text, guard_spans)
    match_sparql = (
        unguarded[: parts.construct]
        + "SELECT DISTINCT *"
        + lines
        + unguarded[parts.template_end : parts.body_start + 1]
        + VALUES_SLOT
        + unguarded[parts.body_start + 1 :]
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
        references=_references(path, text, header["source"]),
    )


class _Outline(NamedTuple):
    """Where a rule's parts are: CONSTRUCT, its template's braces, its WHERE's braces (each
    end just after the closing brace)."""

    construct: int
    template_start: int
    template_end: int
    body_start: int
    body_end: int


def _outline(path: Path, text: str, masked: str) -> _Outline:
    """Find the CONSTRUCT, its template and its WHERE; refuse anything after the WHERE."""
    construct = _CONSTRUCT.search(masked)
    if construct is None:
        raise RuleError("a rule is a SPARQL CONSTRUCT query", path, _line(text, len(text)))
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
    return _Outline(construct.start(), template_start, template_end, body_start, body_end)


def _without_guards(text: str, guard_spans: list[tuple[int, int, int]]) -> str:
    """The text with each ``FILTER NOT EXISTS { … }`` blanked (newlines kept): the engine
    checks guards itself, per batch of solutions."""
    for filter_start, _, body_end in guard_spans:
        blank = "".join(c if c == "\n" else " " for c in text[filter_start : body_end + 1])
        text = text[:filter_start] + blank + text[body_end + 1 :]
    return text


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


_REFERENCE = re.compile(r"ref:([A-Za-z0-9][A-Za-z0-9_.-]*)")


def _references(path: Path, text: str, source: str) -> tuple[str, ...]:
    """The ``ref:`` works a ``# source:`` header cites, as IRIs of references.ttl.

    A header citing references is a comma-separated list of ``ref:`` names and nothing
    else, so every source a user sees resolves to a citation; a header naming none is
    kept as written (its text is shown as it is).
    """
    if "ref:" not in source:
        return ()
    items = [item.strip() for item in source.split(",")]
    wrong = [item for item in items if not _REFERENCE.fullmatch(item)]
    if wrong:
        line = next(
            (n for n, t in enumerate(text.splitlines(), 1) if t.lstrip("# ").startswith("source")),
            None,
        )
        raise RuleError(
            f"# source: lists the works of references.ttl as 'ref:name, ref:name'; "
            f"{wrong[0]!r} is not one",
            path,
            line,
        )
    return tuple(REFERENCES + _REFERENCE.fullmatch(item).group(1) for item in items)


def _check_syntax(path: Path, text: str) -> None:
    """Let pyoxigraph parse the query; report its error at the file's line."""
    try:
        ox.Store().query(text)
    except SyntaxError as error:
        message = str(error)
        match = re.search(r"at (\d+):(\d+)", message)
        line = int(match.group(1)) if match else None
        raise RuleError(f"SPARQL syntax error: {message}", path, line) from error


_KEYWORD = lexer.keyword(
    "FILTER", "BIND", "OPTIONAL", "UNION", "MINUS", "GRAPH", "SERVICE", "VALUES"
)
_CONSTRUCT = lexer.keyword("CONSTRUCT")
_VARIABLE = re.compile(r"[?$]([A-Za-z0-9_][A-Za-z0-9_]*)")
_HIDING_BUT_COMMENTS = frozenset(lexer.HIDING_KINDS - {"comment"})


def _mask(text: str) -> str:
    """``text`` with comments blanked as white space, and strings, IRIs and escapes as
    ``_``: positions and newlines kept.

    Strings and IRIs stay visible as something: a triple pattern may start with an IRI,
    and the scan skips white space to find where a pattern starts.
    """
    return lexer.blanked(lexer.blanked(text, keep=_HIDING_BUT_COMMENTS), fill="_")


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _skip_space(masked: str, position: int) -> int:
    while position < len(masked) and masked[position].isspace():
        position += 1
    return position


def _matching(masked: str, start: int, path: Path, text: str) -> int:
    """The position after the bracket closing the one at ``start``."""
    try:
        return lexer.closing(masked, start) + 1
    except lexer.UnbalancedBrackets as error:
        raise RuleError(error.msg, path, _line(text, error.position)) from error


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
