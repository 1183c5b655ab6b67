"""Render the API reference page of the documentation site (``docs/api-reference.md``) from ``openapi.json``.

``python -m infra.api_reference`` rewrites the page; ``--check`` exits 1 if it is stale (a test runs the same
comparison, as for the OpenAPI file itself). The page is plain Markdown, so the site needs no script to show it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "lambdas" / "api" / "openapi.json"
PAGE = ROOT / "docs" / "api-reference.md"
METHODS = ("get", "post", "put", "patch", "delete")
_CONSTRAINTS = {
    "minLength": "min length {}",
    "maxLength": "max length {}",
    "minItems": "min {} items",
    "maxItems": "max {} items",
    "minimum": ">= {}",
    "maximum": "<= {}",
    "exclusiveMinimum": "> {}",
    "exclusiveMaximum": "< {}",
    "minProperties": "min {} entries",
    "maxProperties": "max {} entries",
    "pattern": "pattern `{}`",
}


def _cell(text: object) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(name: str) -> str:
    return name.lower()


def type_of(schema: dict[str, Any]) -> str:
    """A schema as a short type expression: ``integer``, ``string``, ``array of Movie``, ``Movie or null``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(type_of(s) for s in schema[key]))
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any"


def constraints_of(schema: dict[str, Any]) -> list[str]:
    found = [text.format(schema[key]) for key, text in _CONSTRAINTS.items() if key in schema]
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            found += [c for c in constraints_of(sub) if c not in found]
    if isinstance(schema.get("items"), dict) and "$ref" not in schema["items"]:
        found += [f"each {c}" for c in constraints_of(schema["items"])]
    if "default" in schema:
        found.append(f"default `{json.dumps(schema['default'])}`")
    return found


def _parameters(operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    if not params:
        return []
    rows = ["| Parameter | In | Required | Type | Description |", "|---|---|---|---|---|"]
    for p in params:
        schema = p.get("schema", {})
        extra = constraints_of(schema)
        text = p.get("description") or schema.get("description", "")
        if extra:
            text = f"{text} ({', '.join(extra)})" if text else ", ".join(extra)
        rows.append(
            f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {_cell(type_of(schema))} "
            f"| {_cell(text)} |"
        )
    return ["", *rows]


def _body(operation: dict[str, Any]) -> list[str]:
    body = operation.get("requestBody")
    if not body:
        return []
    lines = []
    for media, content in body.get("content", {}).items():
        lines.append(
            f"Request body ({media}, {'required' if body.get('required') else 'optional'}): "
            f"{type_of(content.get('schema', {}))}"
        )
    return ["", *lines]


def _responses(operation: dict[str, Any]) -> list[str]:
    rows = ["| Status | Meaning | Body |", "|---|---|---|"]
    for status, answer in operation.get("responses", {}).items():
        schemas = [c.get("schema", {}) for c in answer.get("content", {}).values()]
        body = ", ".join(type_of(s) for s in schemas) if schemas else ""
        headers = ", ".join(f"`{h}`" for h in answer.get("headers", {}))
        meaning = answer.get("description", "") + (f" (headers: {headers})" if headers else "")
        rows.append(f"| {status} | {_cell(meaning)} | {_cell(body)} |")
    return ["", *rows]


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = ["", f"### {name}", ""]
    if schema.get("description"):
        lines += [" ".join(schema["description"].replace("``", "`").split()), ""]
    props = schema.get("properties", {})
    if not props:
        lines.append(f"Type: {type_of(schema)}.")
        return lines
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for field, sub in props.items():
        extra = constraints_of(sub)
        text = sub.get("description", "")
        if extra:
            text = f"{text} ({', '.join(extra)})" if text else ", ".join(extra)
        lines.append(f"| `{field}` | {_cell(type_of(sub))} | {'yes' if field in required else 'no'} | {_cell(text)} |")
    if schema.get("additionalProperties") is False:
        lines += ["", "No other fields are accepted."]
    if "oneOf" in schema and all(set(s) == {"required"} for s in schema["oneOf"]):
        kinds = ", ".join(f"`{s['required'][0]}`" for s in schema["oneOf"])
        lines += ["", f"Exactly one of {kinds}."]
    return lines


def render(doc: dict[str, Any]) -> str:
    """The reference page for an OpenAPI document."""
    info = doc["info"]
    out = [
        "# API reference",
        "",
        f"{info['title']}, version {info['version']} (OpenAPI {doc['openapi']}), generated from "
        "`lambdas/api/openapi.json` by `python -m infra.api_reference` (`make openapi`); a running API serves the "
        "same document at `GET /openapi.json`. How the calls fit together: [the API](api.md).",
        "",
        info.get("description", ""),
        "",
        "## Operations",
    ]
    for path, operations in sorted(doc["paths"].items()):
        for method in METHODS:
            if method not in operations:
                continue
            op = operations[method]
            out += ["", f"### `{method.upper()} {path}`", "", f"**{op.get('summary', '')}**"]
            if op.get("description"):
                out += ["", op["description"]]
            out += _parameters(op) + _body(op) + _responses(op)
    out += ["", "## Schemas"]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.api_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {PAGE.name} differs from the rendered one")
    args = parser.parse_args(argv)
    text = render(json.loads(SPEC.read_text()))
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run python -m infra.api_reference", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
