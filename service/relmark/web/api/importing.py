"""``POST /api/import``: spreadsheets and CRM exports into the store through a mapping.

The view is a thin layer over ``relmark.importing``: it saves the uploaded files in a
temporary directory (removed when the request ends; the app's ``MAX_CONTENT_LENGTH``
bounds their size), plans the import (``plan_import``) and, unless ``dry_run``, writes it
(``apply_import``). The answer is the plan's report (``ImportPlan.to_json``) in every case,
so a client reads the problems by source, row and column the same way whether it asked for
a preview (200), was refused (422, nothing written) or imported (200).

The helpers here (``save_uploads``, ``plan_from``, ``input_error``) are shared with the
import page (``web/pages/importing.py``), which keeps its uploads a few minutes longer.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import FileStorage

from relmark.importing import (
    ImportInputError,
    ImportPlan,
    ImportRejected,
    apply_import,
    plan_import,
)
from relmark.vocab import ONTOLOGY_DIR
from relmark.web.auth import require_role
from relmark.web.errors import ApiError
from relmark.web.extensions import after_write, get_settings, get_store
from relmark.web.i18n import LANGUAGES, request_language, unsupported_language

bp = Blueprint("importing", __name__, url_prefix="/api")

#: An uploaded file keeps its base name (the mapping matches sources by name) but only
#: these characters, so a name can never climb out of the upload directory.
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TRUE = {"1", "true", "yes", "on"}


def ready_mappings(ontology_dir: Path | None = None) -> dict[str, Path]:
    """The ready mappings by name: ``contacts`` for ``ontology/mappings/contacts.yml``,
    ``hubspot/contacts`` for a CRM export's (a form's list, and all a client may name)."""
    folder = (ontology_dir or ONTOLOGY_DIR) / "mappings"
    found = {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.glob("*.yml")}
    found |= {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.glob("*/*.yml")}
    return dict(sorted(found.items()))


def safe_name(name: str | None, fallback: str) -> str:
    """A file name safe to join to the upload directory, keeping its base name."""
    base = Path((name or "").replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).lstrip(".")
    return cleaned or fallback


def save_uploads(
    folder: Path, files: list[FileStorage], mapping_file: FileStorage | None
) -> tuple[list[Path], Path | None]:
    """Write the uploaded sources (and mapping) into ``folder``; 400 when no file came.

    Two uploads with the same name get distinct names (``2-contacts.csv``), which the
    mapping then matches by stem like any other file name.
    """
    sources = [f for f in files if f and f.filename]
    if not sources:
        raise ApiError(
            400,
            "no file to import",
            detail="send one or more files in the multipart field 'file' (CSV or Excel)",
            where="file",
        )
    saved: list[Path] = []
    for number, upload in enumerate(sources, start=1):
        name = safe_name(upload.filename, f"source{number}.csv")
        path = folder / name
        if path.exists():
            path = folder / f"{number}-{name}"
        upload.save(path)
        saved.append(path)
    mapping_path = None
    if mapping_file is not None and mapping_file.filename:
        mapping_dir = folder / "mapping"
        mapping_dir.mkdir()
        mapping_path = mapping_dir / safe_name(mapping_file.filename, "mapping.yml")
        mapping_file.save(mapping_path)
        check_uploaded_mapping(mapping_path)
    return saved, mapping_path


#: What an uploaded mapping may hold at its top: its sources are always replaced by the
#: uploaded files; anything else (YARRRML targets, external functions) could make the engine
#: write or read where the client chooses, so it is refused rather than passed on.
UPLOAD_KEYS = frozenset({"prefixes", "base", "mappings", "relmark", "authors"})


def check_uploaded_mapping(path: Path) -> None:
    """400 for an uploaded mapping with a top-level key other than ``UPLOAD_KEYS`` or a
    ``targets`` anywhere; one that does not parse is left to ``load_mapping``'s error."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return
    if not isinstance(document, dict):
        return
    extra = sorted(str(k) for k in document if k not in UPLOAD_KEYS)
    if extra or _has_targets(document):
        found = ", ".join(extra) if extra else "targets"
        raise ApiError(
            400,
            "the uploaded mapping uses what an upload may not",
            detail=f"{found}: an uploaded mapping holds only {', '.join(sorted(UPLOAD_KEYS))}, "
            "and no targets (the output always goes to the store)",
            where=path.name,
        )


def _has_targets(node: object) -> bool:
    if isinstance(node, dict):
        return any(k in ("targets", "target") or _has_targets(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_targets(v) for v in node)
    return False


def mapping_choice(name: str, mapping_path: Path | None) -> Path:
    """The mapping to use: an uploaded one wins over a ready one's name; 400 when neither,
    or when the name is not a ready mapping's (a client names, it never points at a path)."""
    if mapping_path is not None:
        return mapping_path
    name = name.strip().removesuffix(".yml")
    ready = ready_mappings(get_settings().ontology_dir)
    if name in ready:
        return ready[name]
    raise ApiError(
        400,
        f"no ready mapping {name!r}" if name else "no mapping",
        detail="name a ready mapping in 'mapping' (one of: "
        f"{', '.join(ready)}) or upload a YARRRML file in 'mapping_file'",
        where="mapping",
    )


def input_error(error: ImportInputError) -> ApiError:
    """400 for a file or mapping that cannot be used; 503 when the RML engine is missing
    or failed (the set-up's fault: ``make install`` builds its environment)."""
    if error.engine:
        return ApiError(
            503,
            "the RML engine is not available",
            detail=error.message + (f": {error.detail}" if error.detail else ""),
            where=error.where,
        )
    return ApiError(400, error.message, detail=error.detail or error.message, where=error.where)


def plan_from(sources: list[Path], mapping: str | Path, graph: str | None, lang: str) -> ImportPlan:
    """``plan_import`` against the app's store, typed errors as HTTP errors."""
    try:
        return plan_import(
            sources,
            mapping,
            get_store(),
            graph=graph or None,
            lang=lang,
            ontology_dir=get_settings().ontology_dir,
        )
    except ImportInputError as error:
        raise input_error(error) from None


def apply_plan(plan: ImportPlan) -> dict[str, Any]:
    """Write ``plan`` (all or nothing); 422 with the problems when it is refused."""
    try:
        summary = apply_import(plan, get_store(), ontology_dir=get_settings().ontology_dir)
    except ImportRejected as rejected:
        raise refused(plan, rejected.problems) from None
    after_write()
    return {"graph": summary.graph, "rows": summary.rows, "triples": summary.triples}


def refused(plan: ImportPlan, problems: list[Any]) -> ApiError:
    """422: the data has errors; the report lists them by source, row and column."""
    report = public_report(plan)
    report["problems"] = [p.to_json() for p in problems]
    report["ok"] = False
    report["errors"] = sum(p.severity == "error" for p in problems)
    first = next((p for p in problems if p.severity == "error"), None)
    return ApiError(
        422,
        "the data has errors; nothing was imported",
        detail=first.text if first else None,
        where=_where(first) if first else None,
        extra={"report": report},
    )


def public_report(plan: ImportPlan) -> dict[str, Any]:
    """``plan.to_json()`` with each source's file as its uploaded name: the server's
    temporary paths are none of the client's business."""
    report = plan.to_json()
    for source in report["sources"]:
        source["file"] = Path(source["file"]).name
    return report


def _where(problem: Any) -> str | None:
    parts = [problem.source or ""]
    if problem.row is not None:
        parts.append(str(problem.row))
    if problem.column:
        parts.append(problem.column)
    return ":".join(parts) or None


@bp.post("/import")
def import_view() -> Response:
    """Import CSV or Excel files through a mapping (``dry_run=true``: preview only).

    Multipart form: ``file`` (one or more), ``mapping`` (a ready mapping's name) or
    ``mapping_file`` (YARRRML), optional ``graph``, ``lang``, ``dry_run``. Writer role.
    """
    require_role("writer")
    lang = request.form.get("lang", "").strip().lower() or request_language()
    if lang not in LANGUAGES:
        raise unsupported_language(lang)
    dry_run = request.form.get("dry_run", request.args.get("dry_run", "")).lower() in _TRUE
    with tempfile.TemporaryDirectory(prefix="relmark-upload-") as work:
        sources, mapping_path = save_uploads(
            Path(work), request.files.getlist("file"), request.files.get("mapping_file")
        )
        mapping = mapping_choice(request.form.get("mapping", ""), mapping_path)
        plan = plan_from(sources, mapping, request.form.get("graph"), lang)
        report = public_report(plan)
        report["preview_triples"] = plan.preview_triples(rows=10)
        report["dry_run"] = dry_run
        if dry_run:  # the preview is the answer, problems included (``ok`` says if it fits)
            return jsonify(report)
        if not plan.ok:
            raise refused(plan, plan.problems)
        report["imported"] = apply_plan(plan)
    return jsonify(report)
