"""Check API answers against ``lambdas/api/openapi.json``: the status must be documented, the body must match."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from lambdas.api.handler import OPENAPI_PATH

BASE = "urn:recommender-openapi"


@cache
def document() -> dict:
    return json.loads(OPENAPI_PATH.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(BASE, Resource.from_contents(document(), default_specification=DRAFT202012))


def assert_matches(method: str, path_template: str, status: int, body: Any) -> None:
    """Fail unless ``status`` is documented for the operation and ``body`` validates against its schema."""
    operation = document()["paths"][path_template][method.lower()]
    documented = operation["responses"]
    assert str(status) in documented, f"{method} {path_template} answered {status}, documented: {sorted(documented)}"
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({"$ref": BASE + schema["$ref"]}, registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path_template} {status}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )
