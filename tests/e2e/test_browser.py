"""The HTML pages in a real browser: Debian's headless Chromium driven by Playwright.

Playwright is only the driver here: the browser is ``/usr/bin/chromium`` (``make
browser-deps``), never one that Playwright downloads. Each page is screenshotted under
``tests/output/screenshots/`` for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
from support.browse_support import (
    ADVOCATE,
    ADVOCATE_RELATIONSHIP,
    BANK,
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    sparql_select,
)
from support.server import RelmarkServer

from relmark.reasoning.explain import leaves
from relmark.vocab import RM

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
pytest_plugins = ("support.browse_fixtures",)

STEPS = (
    "ProspectingAndQualifying",
    "PreApproach",
    "Approach",
    "PresentationAndDemonstration",
    "HandlingObjections",
    "Closing",
    "FollowUpAndMaintenance",
)

#: Every kind of page, with the title it must have.
PAGES = {
    "home": ("/", "relmark · relmark"),
    "ontology": ("/ontology", "Ontology · relmark"),
    "class": ("/ontology/class?iri=rm:Advocate", "advocate · relmark"),
    "property": ("/ontology/property?iri=rm:employedBy", "employed by · relmark"),
    "members": (f"/ontology/members?class={quote(ADVOCATE)}", "advocate · relmark"),
    "thirty-r": ("/ontology/thirty-r", "30R · relmark"),
    "selling-steps": ("/ontology/selling-steps", "Selling steps · relmark"),
    "loyalty-ladder": ("/ontology/loyalty-ladder", "Loyalty ladder · relmark"),
    "resource": (
        f"/resource?iri={quote(ADVOCATE_RELATIONSHIP)}",
        "Laura Colombo – Banca Lariana · relmark",
    ),
    "explain": (
        f"/explain?iri={quote(ADVOCATE_RELATIONSHIP)}&class={quote(ADVOCATE)}",
        None,
    ),
    "why-not": (
        f"/explain?iri={quote(ADVOCATE_RELATIONSHIP)}&class={quote(RM + 'Partner')}&why=not",
        "Laura Colombo – Banca Lariana: partner · relmark",
    ),
    "query": ("/query", "Query · relmark"),
    "pictures": (f"/pictures?firm={quote(BANK)}", "Pictures · relmark"),
    "search": ("/search?q=banca", "banca · relmark"),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, browse_server: RelmarkServer) -> Iterator[object]:
    """A fresh page; console errors and uncaught exceptions collected in ``page.errors``."""
    context = browser.new_context(
        base_url=browse_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    context.close()


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_title_alt_texts_and_no_console_errors(page, name):
    path, title = PAGES[name]
    response = page.goto(path)
    assert response.status == 200
    page.wait_for_load_state("networkidle")
    if name == "pictures":
        page.wait_for_selector("#network[data-rendered-nodes]")
    shoot(page, name)
    assert page.title().endswith(" · relmark") and len(page.title()) > len(" · relmark")
    if title:
        assert page.title() == title
    assert page.locator("html").get_attribute("lang") == "en"
    images = page.locator("img")
    for i in range(images.count()):
        assert images.nth(i).get_attribute("alt"), f"an <img> without alt on {path}"
    pictures = page.locator("[role=img]")
    for i in range(pictures.count()):
        picture = pictures.nth(i)
        named = picture.get_attribute("aria-label") or picture.get_attribute("aria-labelledby")
        assert named, f"a picture without a text alternative on {path}"
        if picture.evaluate("e => e.tagName") == "svg":
            assert picture.locator("title").text_content().strip()
    assert page.errors == []


def test_class_tree_expands_by_mouse_and_keyboard(page):
    page.goto("/ontology")
    tree = page.locator("#class-tree[role=tree]")
    stakeholder = tree.locator(f'[role=treeitem][data-iri="{RM}Stakeholder"]')
    person = stakeholder.locator(f':scope > ul > [data-iri="{RM}Person"]')
    assert stakeholder.get_attribute("aria-expanded") == "false"
    assert not person.is_visible()
    stakeholder.locator(":scope > .twisty").click()
    assert stakeholder.get_attribute("aria-expanded") == "true"
    assert person.is_visible()
    stakeholder.locator(":scope > .twisty").click()
    assert not person.is_visible()
    # keyboard: Tab into the tree, Down to "stakeholder", Right opens it, Right enters it,
    # Down to "person", Enter opens the class page
    page.locator("#search-q").focus()
    items = tree.locator("[role=treeitem]")
    items.first.focus()
    for _ in range(60):
        if page.evaluate("document.activeElement.dataset.iri") == RM + "Stakeholder":
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.iri") == RM + "Stakeholder"
    page.keyboard.press("ArrowRight")
    assert stakeholder.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowRight")
    first_child = page.evaluate("document.activeElement.dataset.iri")
    assert first_child != RM + "Stakeholder" and person.is_visible()
    for _ in range(30):
        if page.evaluate("document.activeElement.dataset.iri") == RM + "Person":
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ontology/class\?iri=.*Person$"))
    assert page.locator("h1").inner_text().startswith("person")
    shoot(page, "tree-keyboard-person")
    assert page.errors == []


def test_switch_to_italian_shows_italian_labels(page):
    page.goto("/ontology")
    page.get_by_role("link", name="IT", exact=True).click()
    page.wait_for_url("**lang=it*")
    assert page.locator("h1").inner_text() == "Ontologia"
    assert page.locator(f'#class-tree [data-iri="{RM}Stakeholder"] > a').inner_text() == (
        "portatore di interesse"
    )
    page.locator(f'#class-tree [data-iri="{RM}Stakeholder"] > .twisty').click()
    page.locator(f'#class-tree [data-iri="{RM}Person"] > a').first.click()
    page.wait_for_url("**lang=it*")
    assert page.locator("h1").inner_text().startswith("persona")
    assert page.title() == "persona · relmark"
    shoot(page, "class-italian")
    assert page.errors == []


def test_accept_language_alone_gives_italian(browser, browse_server):
    context = browser.new_context(base_url=browse_server.url, locale="it-IT")
    tab = context.new_page()
    tab.goto("/ontology/loyalty-ladder")
    assert tab.locator("h1").inner_text() == "Scala della fedeltà"
    assert tab.locator("table.ladder").inner_text().count("promotore") == 1
    context.close()


def test_editor_runs_a_query_and_shows_rows(page, browse_server):
    page.goto("/query")
    page.wait_for_selector(".CodeMirror")
    page.locator(".CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(
        "PREFIX rm: <https://w3id.org/relmark/ontology#>\n"
        "SELECT ?step ?n WHERE { ?step rm:stepNumber ?n } ORDER BY ?n"
    )
    page.locator("#run-query").click()
    rows = page.locator("#editor-results table.results tbody tr")
    rows.first.wait_for()
    assert rows.count() == 7
    numbers = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(7)]
    assert numbers == [str(n) for n in range(1, 8)]
    assert page.url.endswith("/query")  # answered in place, not by a new page
    csv = requests.get(
        browse_server.url + page.locator("#editor-results a.csv").get_attribute("href"), timeout=30
    )
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[1:] == [
        f"https://w3id.org/relmark/ontology#{step},{n}" for n, step in enumerate(STEPS, 1)
    ]
    shoot(page, "query-editor")
    assert page.errors == []


def test_named_question_form_shows_the_api_rows(page, browse_server):
    page.goto("/query")
    details = page.locator("#q-clients-without-referral")
    details.locator("summary").click()
    details.locator("select[name=firm]").select_option(BANK)
    details.get_by_role("button").click()
    table = details.locator(".named-results table.results")
    table.wait_for()
    api = requests.get(
        browse_server.url + "/api/queries/clients-without-referral",
        params={"firm": BANK},
        timeout=30,
    ).json()
    assert table.locator("tbody tr").count() == len(api["rows"]) > 0
    first = api["rows"][0]["relationship"]
    assert table.locator("tbody tr").first.locator("td").first.inner_text() == first["label"]
    assert "format=csv" in details.locator("a.csv").get_attribute("href")
    shoot(page, "named-question")
    assert page.errors == []


def test_why_expands_to_the_asserted_leaves(page, browse_server):
    page.goto(f"/resource?iri={quote(ADVOCATE_RELATIONSHIP)}")
    why = page.locator(f'details.why[data-mode=why][data-class="{ADVOCATE}"]')
    why.locator("summary").click()
    page.wait_for_selector(f'details.why[data-class="{ADVOCATE}"][data-loaded=yes]')
    tree = requests.get(
        browse_server.url + "/api/explain",
        params={"iri": ADVOCATE_RELATIONSHIP, "class": ADVOCATE},
        timeout=30,
    ).json()["explanation"]
    shown = why.locator("li.leaf.asserted")
    assert shown.count() == len(leaves(tree)) >= 3
    for i in range(shown.count()):
        assert shown.nth(i).locator(".badge.asserted").count() == 1
    # every rule applied says where it comes from (its # source:, as citations)
    assert why.locator("li.inferred > p.source").count() == why.locator("li.inferred").count()
    shoot(page, "resource-why")
    assert page.errors == []


def test_why_not_answers_or_degrades(page, browse_server):
    page.goto(f"/resource?iri={quote(ADVOCATE_RELATIONSHIP)}")
    why_not = page.locator(f'details.why[data-mode=not][data-class="{RM}Partner"]')
    why_not.locator("summary").click()
    page.wait_for_function(
        f"""() => ['yes', 'failed'].includes(document.querySelector(
            'details.why[data-mode=not][data-class="{RM}Partner"]').dataset.loaded)"""
    )
    api = requests.get(
        browse_server.url + "/api/explain",
        params={"iri": ADVOCATE_RELATIONSHIP, "class": RM + "Partner", "why": "not"},
        timeout=30,
    )
    loaded = why_not.get_attribute("data-loaded")
    if api.status_code == 200 and "candidates" in api.json():
        assert loaded == "yes"
        assert why_not.locator(".candidate").count() == len(api.json()["candidates"])
    else:  # the server cannot say why not yet: the link to the JSON stays
        assert loaded == "failed"
    assert why_not.locator(".fallback a").count() == 1
    shoot(page, "resource-why-not")


def test_network_draws_as_many_nodes_as_the_api_says(page, browse_server):
    page.goto(f"/pictures?firm={quote(BANK)}")
    box = page.locator("#network")
    page.wait_for_selector("#network[data-rendered-nodes]")
    api = requests.get(browse_server.url + "/api/network", params={"firm": BANK}, timeout=30).json()
    assert int(box.get_attribute("data-rendered-nodes")) == len(api["nodes"]) > 10
    assert int(box.get_attribute("data-rendered-edges")) == len(api["edges"])
    assert page.evaluate("window.relmarkNetwork.nodes().length") == len(api["nodes"])
    painted = page.evaluate(
        """() => Array.from(document.querySelectorAll('#network canvas')).some(c => {
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) return true; }
            return false; })"""
    )
    assert painted, "the network canvas is blank"
    assert page.locator("table.network-nodes tbody tr").count() == len(api["nodes"])
    markets = sparql_select(
        browse_server,
        "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s rm:inMarketOf demo:banca-lariana }",
    )[0]["n"]
    assert int(markets) <= len(api["nodes"])
    shoot(page, "network")
    assert page.errors == []


def test_pages_work_without_javascript(browser, browse_server):
    """The tree is a plain nested list, "why?" links to the server's explanation, the
    editor's form is answered by the server, the network is a table."""
    context = browser.new_context(base_url=browse_server.url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.goto("/ontology")
    assert tab.locator(f'#class-tree [data-iri="{RM}Person"] > a').first.is_visible()
    tab.goto(f"/resource?iri={quote(ADVOCATE_RELATIONSHIP)}")
    why = tab.locator(f'details.why[data-mode=why][data-class="{ADVOCATE}"]')
    why.locator("summary").click()
    why.locator(".fallback a").click()
    tab.wait_for_url(re.compile(r"/explain\?"))
    assert tab.locator("li.leaf.asserted").count() >= 3
    tab.go_back()
    why_not = tab.locator(f'details.why[data-mode=not][data-class="{RM}Partner"]')
    why_not.locator("summary").click()
    why_not.locator(".fallback a").click()
    tab.wait_for_url(re.compile(r"why=not"))
    # one partner rule since issue 18 (trust and commitment no longer make a partner); Laura
    # has the repeat purchases, so only the joint initiative is unmet
    assert tab.locator("section.candidate").count() == 1
    assert tab.locator("ul.unmet li").count() >= 1
    tab.goto("/query")
    tab.locator("#query-text").fill(
        "PREFIX rm: <https://w3id.org/relmark/ontology#>\n"
        "SELECT ?step WHERE { ?step a rm:SellingStep }"
    )
    tab.locator("#run-query").click()
    tab.wait_for_url(re.compile(r"/query\?query="))
    assert tab.locator("#editor-results table.results tbody tr").count() == 7
    shoot(tab, "query-without-javascript")
    tab.goto(f"/pictures?firm={quote(BANK)}")
    assert not tab.locator("#network").is_visible()
    assert tab.locator("table.network-nodes").is_visible()
    assert tab.locator("table.network-nodes tbody tr").count() == len(
        requests.get(browse_server.url + "/api/network", params={"firm": BANK}, timeout=30).json()[
            "nodes"
        ]
    )
    context.close()
