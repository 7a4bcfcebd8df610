"""The SPARQL lexer (relmark.sparql.lexer): braces, keywords and IRIs found where they are.

Every query here is first parsed by pyoxigraph, so the cases are real SPARQL and the
lexer's reading is checked against a text the engine accepts.
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from relmark.sparql import lexer


def _parses(sparql: str) -> str:
    ox.Store().query(sparql)  # raises SyntaxError if the case is not SPARQL
    return sparql


def _kinds(sparql: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in lexer.tokens(sparql)]


# --- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hiding",
    [
        '"a { b"',
        "'a } b'",
        '"""a\n{ "quoted" }\n"""',
        "'''it's { here'''",
        r'"escaped \" { quote"',
        r"'escaped \' } quote'",
        "<urn:a{b>".replace("{", "%7B"),  # braces cannot stand in an IRI; %-escaped they can
    ],
)
def test_masked_blanks_strings_and_iris_keeping_positions(hiding: str) -> None:
    sparql = _parses(f"SELECT * WHERE {{ ?s ?p {hiding} }}")
    code = lexer.masked(sparql)
    assert len(code) == len(sparql)
    assert code.count("{") == 1 and code.count("}") == 1
    assert code.count("\n") == sparql.count("\n")  # lines stay where they were
    assert code.index("{") == sparql.index("{")


def test_comment_hides_braces_but_not_the_next_line() -> None:
    sparql = _parses("SELECT * # { not a group\nWHERE { ?s ?p ?o } # }")
    code = lexer.masked(sparql)
    assert code.count("{") == 1 and code.count("}") == 1
    assert "WHERE" in code


def test_blanked_fills_terms_and_leaves_comments_white_space() -> None:
    sparql = _parses("SELECT * WHERE { ?s ?p '''a\nb''' } # done\n")
    filled = lexer.blanked(sparql, fill="_")
    assert filled.split() == ["SELECT", "*", "WHERE", "{", "?s", "?p", "____", "____", "}"]
    kept = lexer.blanked(sparql, keep=frozenset({"string"}))
    assert "'''a\nb'''" in kept and "done" not in kept


def test_hash_inside_an_iri_or_string_is_not_a_comment() -> None:
    sparql = _parses('SELECT * WHERE { <http://e/#a> ?p "#b" . ?s ?q ?o }')
    code = lexer.masked(sparql)
    assert code.rstrip().endswith("?s ?q ?o }")
    assert lexer.code_only(sparql).count("<http://e/#a>") == 1  # IRIs kept there


def test_long_string_may_hold_short_quotes_and_newlines() -> None:
    body = '"""one "two" ""three"" {\n}"""'
    sparql = _parses(f"SELECT * WHERE {{ ?s ?p {body} }}")
    strings = [t.text for t in lexer.tokens(sparql) if t.kind == "string"]
    assert strings == [body]


def test_empty_string_then_a_string_is_not_a_long_string() -> None:
    sparql = _parses("SELECT * WHERE { ?s ?p '' . ?s ?q 'x' }")
    strings = [t.text for t in lexer.tokens(sparql) if t.kind == "string"]
    assert strings == ["''", "'x'"]


def test_escape_in_a_prefixed_name_starts_no_comment() -> None:
    sparql = _parses(r"PREFIX ex: <urn:e:> SELECT * WHERE { ?s ex:a\#b ?o }")
    assert ("pname", r"ex:a\#b") in _kinds(sparql)
    assert lexer.masked(sparql).rstrip().endswith("?o }")


def test_unicode_escapes_in_an_iri() -> None:
    sparql = _parses(r"SELECT * WHERE { GRAPH <urn:relmark:\u006Fntology> { ?s ?p ?o } }")
    (iri,) = [t.text for t in lexer.tokens(sparql) if t.kind == "iri"]
    assert lexer.unescape_iri(iri[1:-1]) == "urn:relmark:ontology"


# --- '<' as less-than or as an IRI -------------------------------------------------------------


def test_less_than_with_spaces_is_an_operator() -> None:
    sparql = _parses("SELECT * WHERE { ?s ?p ?o FILTER(?o < 3 && ?o > 1) }")
    kinds = _kinds(sparql)
    assert ("punct", "<") in kinds and ("punct", ">") in kinds
    assert not [k for k, _ in kinds if k == "iri"]
    assert lexer.masked(sparql) == sparql


def test_less_than_then_greater_than_without_spaces_reads_as_an_iri() -> None:
    """The documented reading: ``<…>`` with nothing forbidden inside is an IRI, even where
    the grammar compares (``guard`` refuses the texts where the readings disagree)."""
    sparql = "SELECT * WHERE { ?s ?p ?o FILTER(?o<3&&?o>1) }"
    assert ("iri", "<3&&?o>") in _kinds(sparql)


def test_less_than_or_equal_is_punctuation() -> None:
    sparql = _parses("SELECT * WHERE { ?s ?p ?o FILTER(?o <= 3) }")
    assert [t for k, t in _kinds(sparql) if k == "punct" and t in "<="] == ["<", "="]


# --- tokens -------------------------------------------------------------------------------


def test_token_kinds() -> None:
    sparql = _parses(
        'PREFIX ex: <urn:e:> SELECT ?s $t WHERE { ?s ex:p _:b . ?s ex:q "x"@en-GB . '
        "?s ex:r 3 . ?s ex:n 2.5 . ?s ex:e 1e3 . ?s a ex:C. }"
    )
    kinds = _kinds(sparql)
    for expected in [
        ("word", "PREFIX"),
        ("pname", "ex:"),
        ("iri", "<urn:e:>"),
        ("var", "$t"),
        ("bnode", "_:b"),
        ("langtag", "@en-GB"),
        ("number", "3"),
        ("number", "2.5"),
        ("number", "1e3"),
        ("word", "a"),
        ("pname", "ex:C"),  # the triple's '.' is not part of the name
    ]:
        assert expected in kinds
    assert kinds[-2:] == [("punct", "."), ("punct", "}")]


def test_prefixed_name_is_no_keyword() -> None:
    sparql = _parses("PREFIX rm: <urn:rm:> SELECT ?where WHERE { ?s rm:WHERE ?where }")
    found = [m.start() for m in lexer.keyword("WHERE").finditer(lexer.masked(sparql))]
    assert found == [sparql.index("WHERE {")]


# --- brackets -----------------------------------------------------------------------------


def test_closing_skips_brackets_in_strings_iris_and_comments() -> None:
    sparql = _parses(
        'SELECT * WHERE { ?s ?p "}" . # }\n ?s ?q <urn:x%7D> . { ?a ?b (1 2) } } LIMIT 1'
    )
    code = lexer.masked(sparql)
    opening = sparql.index("{")
    assert lexer.closing(code, opening) == sparql.rindex("}")


def test_closing_reports_where_it_goes_wrong() -> None:
    with pytest.raises(lexer.UnbalancedBrackets) as never:
        lexer.closing("{ ?s ?p ?o ", 0)
    assert never.value.position == 0
    with pytest.raises(lexer.UnbalancedBrackets):
        lexer.closing("{ [ ( }", 2)
    assert lexer.closing("{ [ ( }", 0) == 6  # only braces count for a brace


def test_brace_matched_when_an_iri_reading_hides_one_parenthesis() -> None:
    sparql = _parses("SELECT * WHERE { ?a ?p ?b FILTER((?a<?b)&&?b>1) }")
    code = lexer.masked(sparql)
    assert code.count("(") != code.count(")")  # "<?b)&&?b>" read as an IRI
    assert lexer.closing(code, sparql.index("{")) == sparql.rindex("}")
    with pytest.raises(SyntaxError):  # as the engine's errors for malformed text
        lexer.closing("x", 0)


def test_enclosing_brace() -> None:
    code = "{ a { b } c { d } }"
    assert lexer.enclosing_brace(code, code.index("c")) == 0
    assert lexer.enclosing_brace(code, code.index("d")) == code.index("{ d")
    assert lexer.enclosing_brace("a { b }", 0) is None


def test_top_level_blanks_nested_groups() -> None:
    code = "A { B { C } } D { E }\nF"
    flat = lexer.top_level(code)
    assert len(flat) == len(code)
    assert flat.split() == ["A", "D", "F"]


@pytest.mark.parametrize(
    ("sparql", "before"),
    [
        ("SELECT * WHERE { ?s ?p ?o }", "WHERE "),
        ("SELECT * { ?s ?p ?o }", "* "),
        ("SELECT (EXISTS { ?s ?p ?o } AS ?e) WHERE { ?s ?p ?o }", "WHERE "),
        ('SELECT * WHERE { ?s ?p "{" }', "WHERE "),
        ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "WHERE "),
        ("CONSTRUCT WHERE { ?s ?p ?o }", "WHERE "),
        ("PREFIX ex: <urn:{x}> ASK { ?s ?p ?o }".replace("{x}", "x"), "ASK "),
        ("# SELECT { \nASK { ?s ?p ?o }", "ASK "),
    ],
)
def test_where_brace(sparql: str, before: str) -> None:
    _parses(sparql)
    assert lexer.where_brace(sparql) == sparql.index(before) + len(before)


def test_where_brace_of_no_group_and_of_no_query() -> None:
    assert lexer.where_brace(_parses("DESCRIBE <urn:a>")) is None
    with pytest.raises(SyntaxError):
        lexer.where_brace("INSERT DATA { <urn:a> <urn:b> <urn:c> }")


def test_query_form_ignores_variables_names_and_comments() -> None:
    sparql = _parses("PREFIX ask: <urn:a:> # SELECT\nCONSTRUCT { ?select ask:x ?o } WHERE { }")
    assert lexer.query_form(sparql) == "CONSTRUCT"
