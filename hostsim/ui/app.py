"""The settings screen's routes: pages rendered from the registered specs, and the small JSON API
the page's script calls. Flask and Jinja2 templates; ``security.Guard`` checks every request
before a view runs.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from hostsim.runtime.host import Host
from hostsim.runtime.registry import Registry
from hostsim.ui.editors import EditorView, Refused
from hostsim.ui.files import Downloads
from hostsim.ui.jobs import Jobs
from hostsim.ui.security import Guard
from robomail_plugin.schema import ActionFailed, ActionSpec

MAX_UPLOAD_BYTES = 4 * 1024 * 1024


def _param_row(p: Any) -> dict[str, Any]:
    return {
        "name": p.name, "type": p.type.value, "required": p.required,
        "default": repr(p.default) if p.has_default and p.default is not None else "",
        "choices": list(p.choices), "secret": p.secret, "sets_variable": p.sets_variable,
        "help": p.help,
    }


def _catalogue(specs: list[ActionSpec]) -> list[tuple[str, list[ActionSpec]]]:
    ordered = sorted(specs, key=lambda s: (s.category, s.title))
    categories = dict.fromkeys(s.category for s in ordered)
    return [(c, [s for s in ordered if s.category == c]) for c in categories]


def _json_object(name: str) -> dict[str, Any]:
    """A form part holding a JSON object of text (or true/false) values."""
    try:
        value = json.loads(request.form.get(name) or "{}")
    except ValueError:
        abort(400, f"{name} is not JSON")
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | bool) for k, v in value.items()
    ):
        abort(400, f"{name} must map names to text")
    return {k: ("true" if v is True else "false" if v is False else v) for k, v in value.items()}


def _failure(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": {"code": code, "message": message}}), status


def create_app(
    host: Host, guard: Guard, *, jobs: Jobs, downloads: Downloads, log: TextIO | None = None
) -> Flask:
    app = Flask(__name__)  # templates/ and static/ beside this module
    app.config.update(MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    guard.install(app)
    registry = host.registry
    views = {t: EditorView(spec, registry.providers) for t, spec in registry.editors.items()}
    out = log or sys.stderr
    _add_request_log(app, out)
    _add_pages(app, guard, views, registry)
    _add_editor_api(app, views, jobs, downloads)
    _add_job_api(app, jobs)
    _add_downloads(app, downloads)
    _add_error_handlers(app, out)
    return app


def _view_for(views: dict[str, EditorView], record_type: str) -> EditorView:
    """The editor a URL names; a 404 when no plugin registers that record type."""
    view = views.get(record_type)
    if view is None:
        abort(404, f"No plugin registers a {record_type!r} editor.")
    return view


def _add_request_log(app: Flask, out: TextIO) -> None:
    """One line per request, so whoever started ``hostsim ui`` sees what the page does."""

    @app.after_request
    def log_request(response: Response) -> Response:
        # the path only: the first visit's query holds the launch token
        print(f"{request.method} {request.path} {response.status_code}", file=out, flush=True)
        return response


def _add_pages(
    app: Flask, guard: Guard, views: dict[str, EditorView], registry: Registry
) -> None:
    """The HTML pages: one per registered editor, and the catalogue of actions."""

    @app.context_processor
    def page_facts() -> dict[str, Any]:
        return {"csrf_token": guard.csrf_token,
                "editors": [(t, v.spec.title) for t, v in views.items()]}

    @app.get("/")
    def index() -> BaseResponse:
        if views:
            return redirect(url_for("editor_page", record_type=next(iter(views))))
        return redirect(url_for("actions_page"))

    @app.get("/editors/<record_type>")
    def editor_page(record_type: str) -> str:
        return render_template("editor.html", view=_view_for(views, record_type))

    @app.get("/actions")
    def actions_page() -> str:
        categories = _catalogue(list(registry.actions.values()))
        return render_template("actions.html", categories=categories, param_row=_param_row)


def _add_editor_api(
    app: Flask, views: dict[str, EditorView], jobs: Jobs, downloads: Downloads
) -> None:
    """What an editor page's script calls: its records, and running its commands (a long one
    as a job, a quick one right away)."""
    one_at_a_time = threading.Lock()  # quick commands: no two edits of the store interleave

    @app.get("/api/editors/<record_type>/records")
    def list_records(record_type: str) -> Any:
        return jsonify({"ok": True, "records": _view_for(views, record_type).records()})

    @app.get("/api/editors/<record_type>/record")
    def show_record(record_type: str) -> Any:
        record = _view_for(views, record_type).record(request.args.get("key", ""))
        if record is None:
            return _failure(404, "record_not_found", "There is no such record (any more).")
        return jsonify({"ok": True, "record": record})

    @app.post("/api/editors/<record_type>/commands/<command_id>")
    def run_command(record_type: str, command_id: str) -> Any:
        view = _view_for(views, record_type)
        try:
            run = view.prepare(
                command_id,
                record=request.form.get("record", ""),
                form=_json_object("form"),
                params=_json_object("params"),
                uploads={n: f for n, f in request.files.items() if f.filename},
                downloads=downloads,
            )
        except Refused as exc:
            return jsonify(exc.payload()), 422
        if run.command.long_running:
            job = jobs.start(run)
            return jsonify({"ok": True, **job.status()}), 202
        with one_at_a_time:
            answer = run.execute()
        return jsonify(answer), 200 if answer["ok"] else 400


def _add_job_api(app: Flask, jobs: Jobs) -> None:
    """The page polls a long-running command's job, and its cancel button stops it."""

    @app.get("/api/jobs/<job_id>")
    def job_status(job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None:
            return _failure(404, "no_such_job", "That command is not running here.")
        return jsonify({"ok": True, **job.status()})

    @app.post("/api/jobs/<job_id>/cancel")
    def cancel_job(job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None:
            return _failure(404, "no_such_job", "That command is not running here.")
        job.run.ctx.cancel.set()
        return jsonify({"ok": True, **job.status()})


def _add_downloads(app: Flask, downloads: Downloads) -> None:
    """A file a command produced, handed out once under its key."""

    @app.get("/downloads/<key>")
    def download(key: str) -> Response:
        item = downloads.take(key)
        if item is None:
            abort(404, "This download is gone: run the command again.")
        filename, data = item
        response = Response(data, mimetype="application/json" if filename.endswith(".json")
                            else "application/octet-stream")
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _add_error_handlers(app: Flask, out: TextIO) -> None:
    """Errors as the caller can read them: JSON for the API, plain text for pages, and for a
    crash only the exception's type (its text could hold a secret)."""

    @app.errorhandler(ActionFailed)
    def action_failed(exc: ActionFailed) -> Any:
        return _failure(400, exc.code, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if request.path.startswith("/api/"):
            return _failure(status, "http_error", exc.description or exc.name)
        return Response(f"{exc.name}: {exc.description}\n", status=status, mimetype="text/plain")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        # the type only: an exception's text could hold a secret
        print(f"hostsim ui: {request.path} failed: {type(exc).__name__}", file=out, flush=True)
        return _failure(500, "internal_error", f"Something went wrong ({type(exc).__name__}).")
