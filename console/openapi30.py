"""The served OpenAPI 3.1 document rewritten as 3.0 for the interactive docs: the Swagger UI that
swagger_ui_bundle ships (4.x) renders only 3.0. The rewrite is mechanical and loses nothing the docs show:
a type list with "null" becomes the type plus nullable, const an enum of one, examples an example."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from api.openapi import document

bp = Blueprint("console_openapi30", __name__)


def downgrade(node: Any) -> Any:
    if isinstance(node, list):
        return [downgrade(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: downgrade(value) for key, value in node.items()}
    kind = out.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) == 1:
            out["type"] = kinds[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": k} for k in kinds]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("description"), str):
        # Swagger UI reads descriptions as Markdown and drops what looks like HTML ("Bearer <key>").
        out["description"] = out["description"].replace("<", "&lt;").replace(">", "&gt;")
    examples = out.get("examples")
    if isinstance(examples, list):  # a schema's list (3.1); 3.0's examples of a parameter is a map, left alone
        out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out


@bp.get("/docs/openapi-3.0.json")
def openapi30():
    doc = downgrade(document(current_app.config.get("OPENAPI_EXTRA_PATHS")))
    doc["openapi"] = "3.0.3"
    return jsonify(doc)
