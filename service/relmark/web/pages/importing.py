"""The import page (``/import``): upload, preview, import; plain HTML forms, no script.

A browser without JavaScript cannot send an ``Authorization`` header, so the writer's token
may also come as the form field ``token`` (a password field); a client that sends the header
needs no field. Both are checked like any write (``require_role("writer")``'s rules).

The preview keeps the uploaded files in a server-side directory named by a random id for
``PENDING_SECONDS`` (on disk, so every worker process of ``relmark serve --workers`` sees
it); the Import button posts that id, and the import is planned again from those files and
validated against the store as it is then (``apply_import`` re-validates). The id alone
writes nothing: the Import post needs the writer's token again (the preview page carries the
one typed in the form back in a hidden field; the page is never cached).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from flask import Blueprint, Response, render_template, request

from relmark.importing import ImportPlan
from relmark.reasoning.whatif import WhatIfRefused, WhatIfUnsupported, what_if
from relmark.web.api.importing import (
    apply_plan,
    mapping_choice,
    plan_from,
    ready_mappings,
    refused,
    save_uploads,
)
from relmark.web.auth import require_role, token_store
from relmark.web.errors import ApiError
from relmark.web.extensions import get_settings, get_store
from relmark.web.i18n import request_language

bp = Blueprint("importing", __name__)

#: How long a preview's files wait for the Import button.
PENDING_SECONDS = 15 * 60
#: Previews waiting at once: each holds up to RELMARK_MAX_BODY bytes of files on disk.
MAX_PENDING = 20
#: Rows of each source shown in the preview table; resources the what-if classifies.
PREVIEW_ROWS = 10
WHAT_IF_RESOURCES = 10
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def pending_root() -> Path:
    """The directory of waiting previews, private to this user (mode 0700)."""
    root = Path(tempfile.gettempdir()) / f"relmark-import-pending-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def _sweep(root: Path) -> None:
    """Remove previews older than ``PENDING_SECONDS`` (on every request of the page)."""
    now = time.time()
    for entry in root.iterdir():
        try:
            if now - entry.stat().st_mtime > PENDING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            continue


def _writer(form_token: str) -> None:
    """The writer role, from the ``Authorization`` header or the form's ``token`` field."""
    if "Authorization" in request.headers or not form_token:
        require_role("writer")
        return
    store = token_store()
    if not store.can_write():
        require_role("writer")  # its "updates are disabled" answer
    principal = store.verify(form_token.strip())
    if principal is None:
        raise ApiError(401, "the token is wrong", detail="relmark knows no such token")
    if not principal.may("writer"):
        raise ApiError(
            403,
            "this needs the writer role",
            detail=f"{principal.name} is a {principal.role} token",
        )


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(**context: Any) -> Response:
    context.setdefault("mappings", ready_mappings(get_settings().ontology_dir))
    context.setdefault("form", {})
    return _no_store(Response(render_template("browse/import.html", **context)))


@bp.get("/import")
def form() -> Response:
    """The upload form: files, a ready mapping or an uploaded one, the graph, the token."""
    return _page(title=_title())


@bp.post("/import")
def post() -> Response:
    """Preview (the default) or, with ``pending`` and ``action=import``, import."""
    token = request.form.get("token", "")
    _writer(token)
    root = pending_root()
    _sweep(root)
    lang = request_language()
    if request.form.get("action") == "import":
        return _import(root, request.form.get("pending", ""), token, lang)
    return _preview(root, token, lang)


def _preview(root: Path, token: str, lang: str) -> Response:
    if sum(1 for _ in root.iterdir()) >= MAX_PENDING:
        raise ApiError(
            503,
            "too many imports are waiting",
            detail=f"at most {MAX_PENDING} previews wait at once; try again in a few minutes",
            headers={"Retry-After": "60"},
        )
    pending = secrets.token_urlsafe(24)
    folder = root / pending
    folder.mkdir(mode=0o700)
    try:
        sources, mapping_path = save_uploads(
            folder, request.files.getlist("file"), request.files.get("mapping_file")
        )
        mapping = mapping_choice(request.form.get("mapping", ""), mapping_path)
        graph = request.form.get("graph", "").strip()
        plan = plan_from(sources, mapping, graph, lang)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    (folder / "pending.json").write_text(
        json.dumps(
            {
                "sources": [p.name for p in sources],
                "mapping": request.form.get("mapping", "").strip() if not mapping_path else None,
                "mapping_file": str(mapping_path.relative_to(folder)) if mapping_path else None,
                "graph": graph,
            }
        ),
        encoding="utf-8",
    )
    if not plan.ok:  # nothing to import later: the files need not wait
        shutil.rmtree(folder, ignore_errors=True)
        pending = ""
    return _page(
        title=_title(),
        plan=plan,
        view=_plan_view(plan),
        what_if=_what_if(plan, lang) if plan.ok else None,
        pending=pending,
        token=token,
        form={"mapping": request.form.get("mapping", ""), "graph": graph},
    )


def _import(root: Path, pending: str, token: str, lang: str) -> Response:
    if not pending or not set(pending) <= _ID_CHARS or not (root / pending).is_dir():
        raise ApiError(
            404,
            "no such preview",
            detail=f"previews wait {PENDING_SECONDS // 60} minutes; upload the files again",
            where="pending",
        )
    folder = root / pending
    try:
        meta = json.loads((folder / "pending.json").read_text(encoding="utf-8"))
        sources = [folder / name for name in meta["sources"]]
        mapping = (
            folder / meta["mapping_file"]
            if meta["mapping_file"]
            else mapping_choice(meta["mapping"], None)
        )
        plan = plan_from(sources, mapping, meta["graph"], lang)
        if not plan.ok:
            raise refused(plan, plan.problems)
        imported = apply_plan(plan)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # one import per preview
    return _page(title=_title(), imported=imported, plan=plan, view=_plan_view(plan))


def _title() -> str:
    return "Importa dati" if request_language() == "it" else "Import data"


def _plan_view(plan: ImportPlan) -> dict[str, Any]:
    """What the template shows: each source's first rows, the triples of the first rows,
    and the problems ordered by source, row and column (errors first)."""
    problems = sorted(
        plan.problems,
        key=lambda p: (p.severity != "error", p.source or "", p.row or 0, p.column or ""),
    )
    return {
        "sources": [
            {
                "name": s.name,
                "columns": s.columns,
                "rows": s.rows,
                "encoding": s.encoding,
                "delimiter": s.delimiter,
                "preview": s.preview[:PREVIEW_ROWS],
            }
            for s in plan.sources
        ],
        "triples": plan.preview_triples(rows=PREVIEW_ROWS),
        "problems": problems,
    }


def _what_if(plan: ImportPlan, lang: str) -> dict[str, Any]:
    """The classes the first rows' resources would gain or lose (``reasoning.whatif``),
    or why that was not worked out (too many triples, no helper on this store, timeout).

    The record is added to the store as it is: a re-import's earlier graph is still there in
    the what-if, so a class only the dropped rows gave is not shown as lost."""
    settings = get_settings()
    if plan.triples > settings.whatif_max_triples:
        return {
            "skipped": f"{plan.triples:,} triples > RELMARK_WHATIF_MAX_TRIPLES "
            f"({settings.whatif_max_triples:,})"
        }
    quads = [
        ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph())
        for t in ox.parse(plan.ntriples, format=ox.RdfFormat.N_TRIPLES)
    ]
    iris = [entry["subject"] for entry in plan.preview_triples(rows=PREVIEW_ROWS)]
    iris = iris[:WHAT_IF_RESOURCES]
    if not iris:
        return {"results": []}
    try:
        results = what_if(
            get_store(),
            quads,
            iris,
            ontology_dir=settings.ontology_dir,
            lang=lang,
            timeout=settings.whatif_timeout or settings.query_timeout,
            memory_bound=settings.worker_memory or 0,
        )
    except (WhatIfUnsupported, WhatIfRefused) as error:
        return {"skipped": str(error)}
    return {"results": results}
