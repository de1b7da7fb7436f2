"""Sign-in defence on every door: the API's token endpoints, the admin's and the portal's
sign-in pages, sign-up and password reset.

Two guards, both checked before any password is hashed (an argon2 hash is the costly part of a
sign-in, so an attacker must not be able to make the server compute them at will):

- **Lockout** (django-axes, configured in settings): each failed sign-in is recorded in the
  clinic's own schema (so clinic A's failures never lock the same email in clinic B: two
  accounts), per account (the typed email) and per client address (`clinic.client_address`,
  which believes `X-Forwarded-For` only from our proxies). Too many of either locks it until
  the cool-off passes or a clinic admin deletes the failures (the admin's "Access attempts"
  page); a successful sign-in clears the account's failures, not the address's. The
  `LockoutBackend` comes first in `AUTHENTICATION_BACKENDS`: a locked sign-in stops there.
- **Rates per address** (and per typed email for password reset) on each door, counted in Redis
  before the view runs (`door_limits`; the API's through its DRF throttles).

A refused attempt answers 429 with `Retry-After`: a problem on the API, a page in the portal's
or the admin's look otherwise, the same whether the account exists or not.
"""

import functools
import hashlib
import math
from collections.abc import Callable
from datetime import timedelta

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.conf import settings
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.db.models import Max, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from clinic.api import rate_exceeded
from clinic.client_address import client_address
from clinic.errors import PROBLEM_CONTENT_TYPE, problem, wants_problem_json

LOCKED_DETAIL = "Too many sign-in attempts. Try again later."


def login_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The account a sign-in names, as axes records it: the email, whichever key the door
    sends it under (the API's `email`, the sign-in forms' `username`), trimmed and lower-cased
    like the accounts (one counter however it is typed), and cut to the column's length."""
    source = credentials if credentials is not None else request.POST
    value = source.get("email") or source.get("username")
    if not isinstance(value, str):
        return None
    return value.strip().lower()[:255] or None


class LockoutBackend(AxesStandaloneBackend):
    """axes' check before the password backend. A call to `authenticate()` without a request
    (a shell, the test client's `login`) comes from no client and is not counted."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class LockoutHandler(AxesDatabaseHandler):
    """axes' database handler with a limit per account (`AXES_FAILURE_LIMIT`) and another per
    address (`LOGIN_ADDRESS_FAILURE_LIMIT`, higher: a clinic's staff may share one address),
    each counting the failures of the cool-off; a success clears the account's only, so a
    valid account of one's own cannot wipe the failures an address made on other accounts."""

    def failures(self, request, credentials: dict | None = None) -> tuple[int, int]:
        """(the account's, the address's) failures within the cool-off, in one query."""
        username = get_client_username(request, credentials)
        counted = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))
        totals = counted.aggregate(
            account=Sum("failures_since_start", filter=Q(username=username)),
            address=Sum("failures_since_start", filter=Q(ip_address=request.axes_ip_address)),
        )
        return totals["account"] or 0, totals["address"] or 0

    def get_failures(self, request, credentials: dict | None = None) -> int:
        return self.failures(request, credentials)[0]

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        account, address = self.failures(request, credentials)
        return (
            account >= settings.AXES_FAILURE_LIMIT
            or address >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
        )

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or request.axes_locked_out:
            return
        if self.is_locked(request, credentials):  # the address's limit (axes counts the account)
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=get_client_username(request, credentials),
                ip_address=request.axes_ip_address,
            )

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count


def lockout_wait(request, credentials: dict | None = None) -> float:
    """Seconds until the sign-in `request` makes is no longer locked: the cool-off after the
    latest failure it is locked by (at most; earlier if older failures age out first)."""
    cool_off = get_cool_off(request) or timedelta(0)
    username = get_client_username(request, credentials)
    latest = AccessAttempt.objects.filter(
        Q(username=username) | Q(ip_address=request.axes_ip_address)
    ).aggregate(latest=Max("attempt_time"))["latest"]
    if latest is None:
        return cool_off.total_seconds()
    return (latest + cool_off - timezone.now()).total_seconds()


def account_signed_in(request, credentials: dict) -> None:
    """Clear the account's failures after a sign-in that Django's `login()` does not see
    (the API's token endpoint), as axes does for the pages."""
    if settings.AXES_ENABLED:
        AxesProxyHandler.get_implementation().reset_user_attempts(request, credentials)


def too_many_attempts(request: HttpRequest, wait: float) -> HttpResponse:
    """The 429 answer of a refused sign-in door: a problem for API clients, else a page in the
    admin's or the portal's look. It says when to try again, never whether the account exists."""
    seconds = max(1, math.ceil(wait))
    if wants_problem_json(request):
        body = problem(status=429, code="throttled", detail=LOCKED_DETAIL)
        body["retry_after"] = seconds
        response: HttpResponse = JsonResponse(body, status=429, content_type=PROBLEM_CONTENT_TYPE)
    else:
        admin = request.path.startswith("/admin/")
        template = "admin/too_many_attempts.html" if admin else "portal/auth/too_many_attempts.html"
        context = {"minutes": math.ceil(seconds / 60), "title": "Too many attempts"}
        response = render(request, template, context, status=429)
    response["Retry-After"] = str(seconds)
    return response


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """axes' `AXES_LOCKOUT_CALLABLE`: the sign-in pages' answer when the attempt is locked."""
    return too_many_attempts(request, lockout_wait(request, credentials))


def _email_key(request: HttpRequest) -> str:
    email = request.POST.get("email", "")
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def door_limits(*scopes: str) -> Callable:
    """A page view's rates, counted on each POST before the view runs: each scope of
    `DEFAULT_THROTTLE_RATES` per client address, a scope ending in `_email` per the typed
    `email` (hashed: counted whether an account has it or not). Over any: 429."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def limited(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                address = client_address(request) or "unknown"
                for scope in scopes:
                    ident = _email_key(request) if scope.endswith("_email") else address
                    wait = rate_exceeded(scope, ident)
                    if wait is not None:
                        return too_many_attempts(request, wait)
            return view(request, *args, **kwargs)

        return limited

    return decorate
