"""A person opening a console page gets a page when it fails; the API's JSON error shape is for programs."""
from __future__ import annotations

from flask import Blueprint, render_template

from api.errors import ApiError


def _error_page(exc: ApiError) -> tuple[str, int, dict[str, str]]:
    return render_template("error.html", status=exc.status, message=exc.message), exc.status, exc.headers


def html_errors(bp: Blueprint) -> Blueprint:
    bp.register_error_handler(ApiError, _error_page)
    return bp
