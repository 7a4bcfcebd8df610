"""The pictures: a focal firm's relationship network, its loyalty-ladder funnel and its six
markets as bars, each with a table that says the same in text.

The network is drawn in the browser by cytoscape.js from ``/api/network`` (the JSON the
browser test compares with); the funnel and the bars are inline SVG made here, so they
need no JavaScript.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from relmark.web.errors import ApiError
from relmark.web.extensions import get_store
from relmark.web.i18n import request_language, words
from relmark.web.pages.network import network
from relmark.web.pages.schemes import focal_firms, loyalty_ladder, market_counts

bp = Blueprint("pictures", __name__)


def _firm(store: Any, lang: str) -> tuple[str | None, list[dict]]:
    firms = focal_firms(store, lang)
    wanted = request.args.get("firm", "").strip()
    known = {f["iri"] for f in firms}
    if wanted and wanted not in known:
        raise ApiError(
            404, "not a focal firm", detail=f"<{wanted}> is not a focal firm in the data"
        )
    return (wanted or (firms[0]["iri"] if firms else None)), firms


@bp.get("/pictures")
def page() -> str:
    store, lang = get_store(), request_language()
    firm, firms = _firm(store, lang)
    graph = network(store, firm, lang) if firm else {"nodes": [], "edges": [], "label": ""}
    stages = loyalty_ladder(store, lang, firm) if firm else []
    markets = market_counts(store, firm, lang) if firm else []
    return render_template(
        "browse/pictures.html",
        firm=firm,
        firms=firms,
        network=graph,
        stages=stages,
        funnel=funnel_geometry(stages),
        markets=markets,
        bars=bar_geometry(markets),
        title=words(lang)["pictures"],
    )


@bp.get("/api/network")
def network_api() -> Response:
    """The network picture's data: nodes (with markets) and edges (with kinds) of one firm."""
    store, lang = get_store(), request_language()
    firm, _ = _firm(store, lang)
    if firm is None:
        return jsonify(firm=None, nodes=[], edges=[])
    return jsonify(network(store, firm, lang))


def funnel_geometry(stages: list[dict], width: int = 600, row: int = 44) -> list[dict]:
    """A trapezoid per ladder stage, rank 1 on top, as wide as its count (inline SVG)."""
    biggest = max((s["count"] for s in stages), default=0) or 1
    shapes = []
    for i, stage in enumerate(stages):
        half = 40 + (width / 2 - 40) * stage["count"] / biggest
        y, mid, low = i * row, width / 2, i * row + row - 4
        shapes.append(
            {
                **stage,
                "y": y,
                "points": f"{mid - half:.1f},{y} {mid + half:.1f},{y} "
                f"{mid + half * 0.9:.1f},{low} {mid - half * 0.9:.1f},{low}",
                "text_y": y + row / 2 + 2,
            }
        )
    return shapes


def bar_geometry(markets: list[dict], width: int = 420, row: int = 34) -> list[dict]:
    """One horizontal bar per market, scaled to the largest (inline SVG)."""
    biggest = max((m["count"] for m in markets), default=0) or 1
    return [
        {**m, "y": i * row, "width": round(width * m["count"] / biggest, 1)}
        for i, m in enumerate(markets)
    ]
