"""The OpenAPI schema's shared parts (drf-spectacular): the problem document every error of the
API is (`clinic.errors`, RFC 9457) and the error answers every operation may give, so the
schema describes what the API answers (`tests/test_fuzz_api.py` holds it to that).

`problem_responses` runs after drf-spectacular built the schema (`POSTPROCESSING_HOOKS`): an
error an operation documents with a description only (`extend_schema(responses={409: ...})`)
gets the problem document as its body, and every operation gets the errors any request may
meet on its way through the stack:

- 401: a token that is expired, revoked, signed by an unknown key or for another clinic;
- 403: a role without the permission, or a suspended clinic (every API call);
- 429: a rate limit (per address, per user, per API client and clinic), with `Retry-After`;
- 404: a path naming a row that does not exist or is out of the caller's reach, a list's
  page past its last, `/me/...` without a patient record;
- 400: a body or a query parameter that is not valid, naming the field (`errors`);
- 409: a write the database refused (`constraint-violation`: a constraint no rule checked);
- 413 and 415: a body over `DATA_UPLOAD_MAX_MEMORY_SIZE`, or of a media type not parsed.

It also links a creating `POST`'s 201 to the created row's own operations (`_created_links`).
"""

import copy
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular import openapi
from rest_framework import serializers

PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document. `code` is the last part of `type`; a "
    "validation error names each field in `errors`; some problems add members of their own "
    "(`conflicts`, `suggested_alternatives`, `findings`, `retry_after`, OAuth's `error`...).",
    "properties": {
        "type": {"type": "string", "example": "urn:clinic:problem:validation-error"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "example": "validation-error"},
        "errors": {
            "type": "object",
            "description": "The messages of each field, by its name (`lines.0.code` for "
            "nested ones; `non_field_errors` for the whole body).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

GENERIC = {
    "400": "The request is not valid: `errors` names each field (query parameter or body).",
    "401": "Not signed in as required: a token that is malformed, expired, revoked, signed by "
    "an unknown key or issued by another clinic.",
    "403": "The caller's role may not do this, or the clinic is suspended.",
    "404": "No such row, or one out of the caller's reach; a page past the last; no patient "
    "record of the caller (`/me/...`).",
    "409": "The database refused the change (`constraint-violation`), or the row's state "
    "does not allow it.",
    "413": "The body is larger than the server takes.",
    "415": "The body's media type is not one this operation parses.",
    "429": "A rate limit was reached: `Retry-After` says when to try again.",
}

WRITES = {"post", "put", "patch", "delete"}
METHODS = WRITES | {"get", "head", "options", "trace"}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["401", "403", "404", "429"]
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append("400")
    if method in WRITES:
        statuses.append("409")
    if operation.get("requestBody"):
        statuses += ["413", "415"]
    return sorted(statuses)


def problem_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: problem documents for every error (see above)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, method, operation):
                responses.setdefault(status, {"description": GENERIC[status]})
            for status, response in responses.items():
                if status[0] in "45" and not response.get("content"):
                    response["content"] = _problem_content()
            operation["responses"] = dict(sorted(responses.items()))
    _created_links(result.get("paths", {}), result["components"]["schemas"])
    return result


def _has_id(response: dict[str, Any], components: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    name = schema.get("$ref", "").rpartition("/")[2]
    return "id" in components.get(name, {}).get("properties", {})


def _created_links(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """OpenAPI links from what a `POST` to a collection creates to the operations on it
    (`POST /closures/` 201 -> `GET`, `PATCH`, `DELETE /closures/{id}/` with the answer's `id`):
    Swagger UI shows them, and a stateful fuzzer follows them."""
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        detail = paths.get(f"{path}{{id}}/")
        if created is None or detail is None or "{" in path or not _has_id(created, components):
            continue
        links = {}
        for method in ("get", "patch", "put", "delete"):
            if method in detail:
                target = detail[method]["operationId"]
                links[target] = {
                    "operationId": target,
                    "parameters": {"id": "$response.body#/id"},
                }
        if links:
            created["links"] = links


# A time of day as the API writes and reads it: a wall-clock time without an offset
# ("09:00:00"), which JSON Schema's `time` format (RFC 3339, offset required) refuses.
TIME_OF_DAY = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "example": "09:30:00",
}


def _model_field_is_blank(field: serializers.Field) -> bool:
    """Whether a serializer field renders a model field that may be blank (stored "")."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    source = getattr(field, "source", None)
    if model is None or not source or "." in source:
        return False
    try:
        return bool(model._meta.get_field(source).blank)
    except FieldDoesNotExist:
        return False


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, describing what the serializers render:

    - a time of day is `TIME_OF_DAY` (no offset), not the `time` format;
    - a read-only field of a blank-able model field (an email, a URL) may be "" (DRF drops
      `allow_blank` from read-only fields, so drf-spectacular would not say so);
    - a read-only field whose default is None (`source="payer.name", default=None`) may be null;
    - a staff-only field (`clinic.privacy`) is not required in an answer: a patient's lacks it.
    """

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        hidden = set(getattr(serializer, "staff_only_fields", ()))
        if direction == "response" and hidden and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in hidden]
            if not schema["required"]:
                del schema["required"]
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.TimeField):
            schema = {**{k: v for k, v in schema.items() if k != "format"}, **TIME_OF_DAY}
        return schema

    def _insert_field_validators(self, field, schema):
        if (
            isinstance(field, serializers.CharField)
            and field.read_only
            and not field.allow_blank
            and _model_field_is_blank(field)
        ):
            field = copy.copy(field)
            field.allow_blank = True
        super()._insert_field_validators(field, schema)

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        if isinstance(field, serializers.Field) and field.read_only and field.default is None:
            meta["nullable"] = True
        return meta
