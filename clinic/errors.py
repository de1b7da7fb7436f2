"""One error shape for the whole API: RFC 9457 problem details.

Domain code raises `ApplicationError` subclasses; `problem_exception_handler` turns those,
DRF's own exceptions and anything unexpected into `application/problem+json`.
"""

import logging
import math
import re
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, InternalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .resilience import is_database_unavailable

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApplicationError(Exception):
    """A domain error with a stable `code` (the problem type) and an HTTP status.

    `extra` carries machine-readable members added to the problem (e.g. alternatives).
    """

    status: int = 400
    code: str = "bad-request"
    title: str = ""

    def __init__(self, detail: str = "", *, extra: dict[str, Any] | None = None, **kw: Any):
        super().__init__(detail)
        self.detail = detail or self.title or TITLES.get(self.status, "Error")
        self.extra = extra or {}
        for key, value in kw.items():
            setattr(self, key, value)


class ConflictError(ApplicationError):
    status = 409
    code = "conflict"


class NotFoundError(ApplicationError):
    status = 404
    code = "not-found"


class PermissionDeniedError(ApplicationError):
    status = 403
    code = "permission-denied"


def problem(
    *,
    status: int,
    code: str,
    detail: str,
    title: str = "",
    errors: dict[str, list[str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:clinic:problem:{code}",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into {"field" or "field.sub": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" and not prefix else key
            out.update(_field_errors(value, f"{prefix}.{name}" if prefix else str(name)))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                out.update(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _validation_detail(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {' '.join(messages)}" for field, messages in errors.items()]
    return "Invalid input. " + "; ".join(parts)


DATABASE_UNAVAILABLE_DETAIL = (
    "The service is briefly unavailable (its database cannot be reached). Nothing was "
    "changed by this request; please try again in a few seconds."
)


def database_unavailable_response(request: HttpRequest, error: BaseException) -> HttpResponse:
    """503 with `Retry-After` for a request PostgreSQL could not serve (clinic.resilience):
    problem JSON for API clients and probes, a friendly page for browsers, rendered without
    anything that reads the database. Marked for the one retry of idempotent reads
    (clinic.middleware.DatabaseRetryMiddleware)."""
    logger.warning("database unavailable for %s %s: %s", request.method, request.path, error)
    response: HttpResponse
    if request.path == "/health/":
        body = {"status": "degraded", "checks": {"database": {"status": "down"}}}
        response = JsonResponse(body, status=503)
    elif wants_problem_json(request):
        response = JsonResponse(
            problem(status=503, code="database-unavailable", detail=DATABASE_UNAVAILABLE_DETAIL),
            status=503,
            content_type=PROBLEM_CONTENT_TYPE,
        )
    else:
        context = {
            "status": 503,
            "title": TITLES[503],
            "detail": DATABASE_UNAVAILABLE_DETAIL,
            "request": request,
        }
        response = HttpResponse(render_to_string("error.html", context), status=503)
    response["Retry-After"] = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    response.database_error = error  # type: ignore[attr-defined]
    return response


DATABASE_INTERNAL_DETAIL = (
    "The database could not complete this request and rolled it back: nothing was saved. "
    "Please try again in a few seconds."
)


def is_database_internal_error(error: BaseException | None) -> bool:
    """An `InternalError` with SQLSTATE XX000: raised by the database itself rather than by
    the request, e.g. by Citus when a distributed transaction fails on a worker at COMMIT (its
    transaction is rolled back). Worth a retry, never a 500."""
    cause = getattr(error, "__cause__", None)
    return isinstance(error, InternalError) and getattr(cause, "sqlstate", None) == "XX000"


def database_internal_response(request: HttpRequest, error: BaseException) -> HttpResponse:
    """503 with `Retry-After` for an XX000 (`is_database_internal_error`): problem JSON for
    API clients, the error page for browsers. Not marked for the retry of idempotent reads:
    the database did answer."""
    logger.error("database internal error for %s %s: %s", request.method, request.path, error)
    response = error_response(
        request, status=503, code="database-internal-error", detail=DATABASE_INTERNAL_DETAIL
    )
    response["Retry-After"] = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    return response


def problem_exception_handler(exc: Exception, context: dict) -> Response:
    headers: dict[str, str] = {}
    if is_database_unavailable(exc):
        body = problem(status=503, code="database-unavailable", detail=DATABASE_UNAVAILABLE_DETAIL)
        unavailable = Response(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
        unavailable["Retry-After"] = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
        unavailable.database_error = exc  # type: ignore[attr-defined]
        logger.warning("database unavailable in an API view: %s", exc)
        return unavailable
    if is_database_internal_error(exc):
        logger.error("database internal error in an API view: %s", exc)
        body = problem(status=503, code="database-internal-error", detail=DATABASE_INTERNAL_DETAIL)
        internal = Response(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
        internal["Retry-After"] = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
        return internal
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            messages = {
                "non_field_errors" if field == NON_FIELD_ERRORS else field: errors
                for field, errors in exc.message_dict.items()
            }
        else:
            messages = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(messages)
    if isinstance(exc, RequestDataTooBig):
        body = problem(
            status=413,
            code="body-too-large",
            detail=f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        )
        return Response(body, status=413, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, IntegrityError | DataError):
        # Services turn the constraint violations they expect into field errors; anything that
        # still reaches here is a rule the database enforced that no code checked: refuse the
        # write (it was rolled back) rather than answer 500.
        logger.warning("database refused a write: %s", exc)
        conflict = isinstance(exc, IntegrityError)
        body = problem(
            status=409 if conflict else 400,
            code="constraint-violation" if conflict else "invalid-data",
            detail="The database refused the change: " + constraint_name(exc)
            if conflict
            else "A value does not fit its field.",
        )
        return Response(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, ApplicationError):
        body = problem(
            status=exc.status, code=exc.code, detail=exc.detail, title=exc.title, extra=exc.extra
        )
        return Response(body, status=exc.status, content_type=PROBLEM_CONTENT_TYPE)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in API view", exc_info=exc)
        body = problem(
            status=500, code="server-error", detail="An unexpected error occurred; it was logged."
        )
        return Response(body, status=500, content_type=PROBLEM_CONTENT_TYPE)
    for name in ("WWW-Authenticate", "Retry-After", "Allow"):
        if name in response:
            headers[name] = response[name]
    code_status = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        body = problem(
            status=code_status,
            code="validation-error",
            detail=_validation_detail(errors),
            errors=errors,
        )
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = _code_for(exc, code_status)
        if isinstance(exc, exceptions.ParseError):
            detail = f"The request body is not valid JSON: {detail}"
        if isinstance(detail, dict | list):
            detail = _validation_detail(_field_errors(detail))
        body = problem(status=code_status, code=code, detail=str(detail))
        if isinstance(exc, exceptions.Throttled):
            wait: float | None = exc.wait  # type: ignore[attr-defined]  # DRF's stubs omit it
            if wait is not None:
                body["retry_after"] = math.ceil(wait)  # as DRF's Retry-After header
    response = Response(body, status=code_status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in headers.items():
        response[name] = value
    return response


# What PostgreSQL writes when a constraint refuses a row ("... violates exclusion constraint
# "appointment_no_overlap""), and the suffix Citus gives a shard's copy of it (its shard id).
_VIOLATES_CONSTRAINT = re.compile(r'violates (?:[a-z -]+ )?constraint "([^"]+)"')
_SHARD_SUFFIX = re.compile(r"_\d{6,}$")


def constraint_name(exc: Exception) -> str:
    """The name of the constraint a database error reports ("" when it names none).

    PostgreSQL gives it in the error's diagnostics. Citus does not for a violation raised on a
    worker (`diag.constraint_name` is None there): the message still names the shard's
    constraint, e.g. `appointment_no_overlap_102104`, read back to `appointment_no_overlap`."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    primary = getattr(diag, "message_primary", None) or str(exc.__cause__ or exc)
    return constraint_name_in_message(primary)


def constraint_name_in_message(message: str) -> str:
    """The constraint a violation message names, without a Citus shard suffix (`_<6+ digits>`;
    shard ids start at 102008): "" when the message names none."""
    match = _VIOLATES_CONSTRAINT.search(message)
    return _SHARD_SUFFIX.sub("", match.group(1)) if match else ""


def _code_for(exc: Exception, code_status: int) -> str:
    if isinstance(exc, exceptions.ParseError):
        return "malformed-json"
    if isinstance(exc, Http404 | exceptions.NotFound):
        return "not-found"
    if isinstance(exc, PermissionDenied | exceptions.PermissionDenied):
        return "permission-denied"
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            return codes.replace("_", "-")
    return {
        401: "not-authenticated",
        405: "method-not-allowed",
        415: "unsupported-media-type",
        429: "throttled",
    }.get(code_status, "error")


def wants_problem_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, *, status: int, code: str, detail: str) -> HttpResponse:
    """An error outside DRF: problem JSON for API clients, an HTML page for browsers."""
    if wants_problem_json(request):
        return JsonResponse(
            problem(status=status, code=code, detail=detail),
            status=status,
            content_type=PROBLEM_CONTENT_TYPE,
        )
    context = {"status": status, "title": TITLES.get(status, "Error"), "detail": detail}
    return render(request, "error.html", context, status=status)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, status=400, code="bad-request", detail="Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=403, code="permission-denied", detail="You may not open this page."
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=404, code="not-found", detail=f"Nothing is served at {request.path}."
    )


def handler500(request: HttpRequest) -> HttpResponse:
    error = sys.exc_info()[1]  # Django calls this inside its `except` of the request
    if is_database_unavailable(error):
        assert error is not None
        return database_unavailable_response(request, error)
    if is_database_internal_error(error):
        assert error is not None
        return database_internal_response(request, error)
    return error_response(
        request,
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        code="server-error",
        detail="Something went wrong on our side. It was logged; please try again.",
    )
