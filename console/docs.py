"""Interactive API documentation at /docs: Swagger UI (assets from the swagger_ui_bundle package, served by
this app; no CDN) reading the served /openapi.json. "Try it out" calls the API with a key the reader enters,
or, signed in to the console, with the session (its CSRF token is sent along)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, send_from_directory

bp = Blueprint("console_docs", __name__, template_folder="templates")

ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                    "favicon-32x32.png", "favicon-16x16.png"})


def _assets_dir() -> str:
    from swagger_ui_bundle import swagger_ui_path

    return str(swagger_ui_path)


@bp.get("/docs")
def docs():
    return render_template("docs.html")


@bp.get("/docs/assets/<name>")
def asset(name: str):
    if name not in ASSETS:
        abort(404)
    response = send_from_directory(_assets_dir(), name, max_age=3600)
    return response
