"""Cross-cutting API pieces: pagination, ordering, rendering, rate limits and the shared cache
of public answers."""

import copy
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Page
from django.db import models, transaction
from django.db.models import Q
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from django_tenants.utils import schema_context
from rest_framework import serializers, throttling
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination as DRFCursorPagination
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from . import counting, metrics
from .client_address import client_address
from .inputs import plausible_date_error, schedule_date_error
from .resilience import redis_call
from .tenancy import tenant_connection

log = logging.getLogger(__name__)


class _ClientPerPool(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """Django's Redis cache, keeping one client per connection pool. Django builds a new
    `redis.Redis` for every operation, and each builds its table of ~250 reply callbacks:
    0.2 ms of CPU, twice per write request (rate limit, answers version)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ClientPerPool


class FailOpenRedisCache(RedisCache):
    """`RedisCache` failing open (clinic.resilience): a read Redis does not answer is a miss, a
    write is skipped (`add` adds nothing), so answers are computed from PostgreSQL meanwhile. A
    data-version bump that could not be written (`clinic_data_changed`) lapses with the entries
    it would have made stale (their kind's seconds, `clinic.api.answer_cache_seconds`)."""

    def get(self, key, default=None, version=None):
        return redis_call("cache", super().get, key, default, version, default=default)

    def get_many(self, keys, version=None):
        return redis_call("cache", super().get_many, keys, version, default={})

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return redis_call("cache", super().set, key, value, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return redis_call("cache", super().add, key, value, timeout, version, default=False)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return redis_call("cache", super().set_many, data, timeout, version, default=[])

    def delete(self, key, version=None):
        return redis_call("cache", super().delete, key, version, default=False)

    def delete_many(self, keys, version=None):
        return redis_call("cache", super().delete_many, keys, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return redis_call("cache", super().touch, key, timeout, version, default=False)

    def has_key(self, key, version=None):
        return redis_call("cache", super().has_key, key, version, default=False)


def _own_copies(fields: dict) -> dict:
    """A serializer's own copies of its fields (binding sets a field's parent and name): a
    shallow copy of a plain field, a deep one of a nested serializer. DRF deep-copies every
    field, which runs each one's constructor again: a third of rendering an appointment."""
    return {
        name: copy.deepcopy(field)
        if isinstance(field, serializers.BaseSerializer)
        else copy.copy(field)
        for name, field in fields.items()
    }


class ScheduleDateTimeField(serializers.DateTimeField):
    """A moment on a schedule: within `clinic.inputs.SCHEDULE_YEARS` of today (year 1 or 9999
    overflows as soon as a zone or a duration is applied)."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if message := schedule_date_error(moment):
            raise serializers.ValidationError(message)
        return moment


class ScheduleDateField(serializers.DateField):
    """A day on a schedule: within `clinic.inputs.SCHEDULE_YEARS` of today."""

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if message := schedule_date_error(day):
            raise serializers.ValidationError(message)
        return day


class PlausibleDateTimeField(serializers.DateTimeField):
    """A model's moment: from 1900 to `SCHEDULE_YEARS` ahead (`clinic.inputs`)."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if message := plausible_date_error(moment):
            raise serializers.ValidationError(message)
        return moment


class PlausibleDateField(serializers.DateField):
    """A model's day: from 1900 to `SCHEDULE_YEARS` ahead (`clinic.inputs`)."""

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if message := plausible_date_error(day):
            raise serializers.ValidationError(message)
        return day


class Serializer(serializers.Serializer):
    """DRF's Serializer, copying its declared fields more cheaply (`_own_copies`)."""

    def get_fields(self):
        return _own_copies(self._declared_fields)


class ModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that builds its fields from the model once per class, not on every
    instance: DRF introspects each model field again for every serializer it creates (1 ms
    for an appointment, most of the CPU of rendering one); then `_own_copies`. For serializers
    whose fields do not depend on the request (the context is not seen here). A model's dates
    are bounded (`PlausibleDateField`): none of them means year 1 or 9999."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateField: PlausibleDateField,
        models.DateTimeField: PlausibleDateTimeField,
    }

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = cls._built_fields = super().get_fields()
        return _own_copies(built)


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200


class Windowed(Protocol):
    """A search that reads a page and counts its matches in one statement."""

    def window(self, offset: int, limit: int) -> tuple[list, int]:
        """The rows from `offset` on, at most `limit`, and the number of matches."""
        ...

    def count(self) -> int: ...


class WindowCountPagination(Pagination):
    """Page-number pagination in one query: the search (`Windowed`, e.g.
    `practice.selectors.PractitionerSearch`) carries the total on every row of the page as
    `COUNT(*) OVER ()`, instead of a separate `SELECT COUNT(*)` that plans and filters the
    whole search again (`?page=last` alone counts first). Same response shape as
    `Pagination`."""

    # A `Windowed` search, not DRF's pages of any sequence.
    def paginate_queryset(self, queryset: Windowed, request, view=None):  # type: ignore[override]
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        number = request.query_params.get(self.page_query_param) or 1
        try:
            if number in self.last_page_strings:
                number = max(1, -(-queryset.count() // page_size))
            number = int(number)
            if number < 1:
                raise ValueError
        except (TypeError, ValueError):
            message = self.invalid_page_message.format(page_number=number, message="")
            raise NotFound(message) from None
        rows, total = queryset.window((number - 1) * page_size, page_size)
        if not rows and number > 1:
            raise NotFound(
                self.invalid_page_message.format(
                    page_number=number, message="That page contains no results"
                )
            )
        paginator = self.django_paginator_class(rows, page_size)
        paginator.__dict__["count"] = total  # the whole search's, cached
        self.page = Page(rows, number, paginator)
        return rows


class CursorPagination(DRFCursorPagination):
    """Cursor pagination for the large lists (appointments, charges): `next` and `previous`
    are links carrying an opaque `cursor`, and a page is found by where the last one ended,
    never by an offset or a count, so it costs the same on page 1 as on page 5,000 and a row
    added or removed meanwhile neither repeats nor skips one.

    DRF's cursor positions on the first ordering field alone and steps over ties with an
    offset (capped at 1,000: past that many visits of one start or charges of one day it
    loses its place); here the position is every ordering field, ended by the primary key
    (the view's `ordering`, or `?ordering=` among its `ordering_fields`), compared as a
    whole: `(start, id) > (s, i)`. A cursor that is not one this API wrote is a 400 naming
    `cursor`."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("pk",)
    invalid_cursor_message = "Not a cursor of this list: follow the `next` or `previous` link."

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        ordering = list(super().get_ordering(request, queryset, view))
        if not any(field.lstrip("-") in ("pk", "id") for field in ordering):
            ordering.append("-pk" if ordering and ordering[0].startswith("-") else "pk")
        return tuple(ordering)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None
        return cursor

    def _get_position_from_instance(self, instance, ordering) -> str:
        values = []
        for field in ordering:
            value = getattr(instance, field.lstrip("-"))
            values.append(None if value is None else str(value))
        return json.dumps(values, separators=(",", ":"))

    def _after(self, position: str, *, reverse: bool) -> Q:
        """Rows after `position` in the ordering (before it when `reverse`): the ordering's
        fields compared as one tuple, field by field."""
        try:
            values = json.loads(position)
            if not isinstance(values, list) or len(values) != len(self.ordering):
                raise ValueError
        except ValueError:
            raise ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None
        after = Q(pk__in=[])
        equal = Q()
        for field, value in zip(self.ordering, values, strict=True):
            name = field.lstrip("-")
            lookup = "lt" if field.startswith("-") != reverse else "gt"
            after |= equal & Q(**{f"{name}__{lookup}": value})
            equal &= Q(**{name: value})
        return after

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's, with the whole ordering as the position (`_after`): then no two rows share a
        position and the offset stays 0."""
        self.request = request
        self.page_size = self.get_page_size(request)
        if not self.page_size:
            return None
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        offset, reverse, position = self.cursor or (0, False, None)
        ordering = [_reversed(field) for field in self.ordering] if reverse else self.ordering
        queryset = queryset.order_by(*ordering)
        if position is not None:
            try:
                queryset = queryset.filter(self._after(position, reverse=reverse))
            except (ValueError, TypeError, DjangoValidationError):
                message = self.invalid_cursor_message
                raise ValidationError({self.cursor_query_param: [message]}) from None
        rows = list(queryset[offset : offset + self.page_size + 1])
        self.page = rows[: self.page_size]
        following = None
        if len(rows) > len(self.page):
            following = self._get_position_from_instance(rows[-1], self.ordering)
        if reverse:
            self.page.reverse()
            self.has_next = position is not None or offset > 0
            self.has_previous = following is not None
            self.next_position, self.previous_position = position, following
        else:
            self.has_next = following is not None
            self.has_previous = position is not None or offset > 0
            self.next_position, self.previous_position = following, position
        return self.page


def _reversed(field: str) -> str:
    return field[1:] if field.startswith("-") else f"-{field}"


class JSONRenderer(DRFJSONRenderer):
    """Compact JSON; problem details keep their own content type (set on the response)."""

    compact = True


class PDFRenderer(BaseRenderer):
    """`?format=pdf` (or `Accept: application/pdf`) on views that make PDFs: the view's bytes
    pass through; a refusal's problem details stay JSON (their response names its type)."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


JSON_MAX_DEPTH = 32


def _json_depth_exceeds(value: object, limit: int) -> bool:
    """Whether `value` nests lists/objects deeper than `limit` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


class JSONParser(DRFJSONParser):
    """DRF's JSON parser refusing bodies nested deeper than `JSON_MAX_DEPTH`: no request
    needs more, and Python's json raises RecursionError (a 500) past ~1000 levels. The size
    limit is Django's DATA_UPLOAD_MAX_MEMORY_SIZE (a 413, see clinic.errors)."""

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = f"it nests deeper than {JSON_MAX_DEPTH} levels."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep) from None
        if _json_depth_exceeds(data, JSON_MAX_DEPTH):
            raise ParseError(too_deep)
        return data


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, which builds and validates the view's filter form on every
    request, skipped when the request names none of the filterset's parameters: a plain page of
    a list, which the filterset would return as it is (no filter here is required), and whose
    form cost about 1 ms of a claims-list answer (bench/request_path.py --profile claims)."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not _names_a_filter(request.query_params, filterset_class):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _names_a_filter(params, filterset_class) -> bool:
    """Whether `params` name one of the filterset's filters (a range filter's parameters carry
    a suffix: `created_after`), or a filter is required (its absence is the filterset's 400)."""
    filters = filterset_class.base_filters
    if any(f.extra.get("required") for f in filters.values()):
        return True
    return any(key == name or key.startswith(f"{name}_") for key in params for name in filters)


class StableOrderingFilter(OrderingFilter):
    """`?ordering=` that always ends on the primary key, so equal values never swap places
    between two pages."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering  # keep the selector's own (stable) order
        ordering = list(ordering)
        if not any(field.lstrip("-") in ("pk", "id") for field in ordering):
            ordering.append("pk")
        return ordering


class CounterRateThrottle(throttling.SimpleRateThrottle):
    """DRF's rate throttles keep the timestamp of every request of the window in one cache
    value, read and rewritten whole on each request: work that grows with the rate (6,000
    floats per request at the anonymous limit). This one counts requests per fixed window in
    Redis: one INCR a request, whatever the rate (and an EXPIRE after the window's first: a
    counter whose EXPIRE was lost stays behind, but no later window counts on it). A fixed window
    lets a client send up to twice the rate across a window boundary; the limits here are abuse
    guards, not quotas.
    """

    # Set by SimpleRateThrottle.__init__ from the rate (ints whenever `rate` is set); DRF's stubs
    # do not declare them.
    num_requests: int
    duration: int

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        name = f"{self.key}:{window}"
        try:
            redis = self.cache._cache  # type: ignore[attr-defined]  # Django's RedisCache
        except AttributeError:  # another cache backend: two round trips
            self.cache.add(name, 0, self.duration + 1)
            count = self.cache.incr(name)
        else:
            key = self.cache.make_and_validate_key(name)
            client = redis.get_client(key, write=True)
            # Redis unreachable: the limit fails open (counted, clinic.resilience).
            count = redis_call("throttle", client.incr, key, default=0)
            if count == 1:  # the window's first request gives its counter an end
                redis_call("throttle", client.expire, key, self.duration + 1)
        return count <= self.num_requests

    def wait(self) -> float:
        return self.wait_seconds

    def get_ident(self, request) -> str:
        """The client's address as `clinic.client_address` finds it: DRF's own reads a
        client-written `X-Forwarded-For`, so a client would pick a new counter per request."""
        return client_address(request) or "unknown"


class AnonRateThrottle(throttling.AnonRateThrottle, CounterRateThrottle):
    """Anonymous requests, per client address (`anon` rate)."""


class UserRateThrottle(throttling.UserRateThrottle, CounterRateThrottle):
    """Signed-in users, per user (`user` rate); anonymous requests count under `anon` only."""

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class ScopedRateThrottle(throttling.ScopedRateThrottle, CounterRateThrottle):
    """A view's `throttle_scope` rate, per user or client address."""


class KeyedRateThrottle(CounterRateThrottle):
    """A rate of `DEFAULT_THROTTLE_RATES` counted per a key the caller names (a client address,
    a typed email): for the sign-in pages, which are no DRF views."""

    def __init__(self, scope: str, ident: str):
        self.scope = scope
        self.ident = ident
        super().__init__()

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


def rate_exceeded(scope: str, ident: str) -> float | None:
    """Count one request of `ident` under `scope`'s rate (`DEFAULT_THROTTLE_RATES`): None while
    within it, else the seconds until the window ends."""
    throttle = KeyedRateThrottle(scope, ident)
    if throttle.allow_request(None, None):
        return None
    return throttle.wait()


# Public answers -------------------------------------------------------------------------------

ANSWERS_VERSION_KEY = "answers-version"


def clinic_data_changed() -> None:
    """Call on every write a public answer may depend on (the directory, hours, time off,
    appointment types, appointments, next available slots): once the write commits, the
    clinic's data version changes and every cached answer of the clinic is stale. Rolled-back
    writes change nothing. Keys are per clinic (the cache's key function adds the schema)."""
    schema = tenant_connection.schema_name  # the clinic of the write, whatever runs the hook

    def bump() -> None:
        with schema_context(schema):
            cache.set(ANSWERS_VERSION_KEY, uuid.uuid4().hex, None)

    transaction.on_commit(bump, robust=True)  # committed: a Redis error is logged, not raised


# Calendar versions: a committed change of one appointment makes stale only the availability
# answers that could show it, not the whole clinic's. Time is cut into weeks (UTC, from the
# epoch); each week has a version per clinic (answers over every practitioner offering a type or
# of a specialty) and one per practitioner and clinic (answers naming practitioners). A key
# lives a day after it was last set or first read (an answer lives a minute at most), and a
# missing one is made anew when read, so a lapsed version only makes its answers miss once.
CALENDAR_WEEK = timedelta(days=7)
CALENDAR_MARGIN = timedelta(days=2)  # a zone's offset, a type's buffers
CALENDAR_VERSION_SECONDS = 24 * 3600


def _weeks(lo: datetime, hi: datetime) -> range:
    """The weeks (numbered from the epoch) that the instants lo..hi touch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return range((lo - epoch) // CALENDAR_WEEK, (hi - epoch) // CALENDAR_WEEK + 1)


def calendar_scopes(
    *, first_day: date, last_day: date, practitioners: Iterable[int] | None = None
) -> list[str]:
    """The calendar version keys of an answer over the days `first_day`..`last_day` (on any
    clock: a margin of two days either side): of the named `practitioners`, or, without
    them, the clinic's."""
    midnight = datetime.min.time()
    lo = datetime.combine(first_day, midnight, UTC) - CALENDAR_MARGIN
    hi = datetime.combine(last_day, midnight, UTC) + timedelta(days=1) + CALENDAR_MARGIN
    weeks = _weeks(lo, hi)
    if practitioners is None:
        return [f"answers-week:{week}" for week in weeks]
    return [f"answers-week:{week}:{pk}" for pk in sorted(set(practitioners)) for week in weeks]


def calendar_changed(practitioner_id: int, ranges: Iterable[tuple[datetime, datetime]]) -> None:
    """Call on every write of a practitioner's busy time over `ranges` (an appointment's blocked
    range, before and after): once the write commits, the availability answers touching those
    weeks, of that practitioner and of the whole clinic, are stale; other answers stay
    (`AnswerCache` with scopes). Rolled-back writes change nothing."""
    schema = tenant_connection.schema_name
    weeks = {week for lo, hi in ranges for week in _weeks(lo, hi)}
    keys = [f"answers-week:{week}" for week in weeks]
    keys += [f"answers-week:{week}:{practitioner_id}" for week in weeks]

    def bump() -> None:
        version = uuid.uuid4().hex
        with schema_context(schema):
            cache.set_many(dict.fromkeys(keys, version), CALENDAR_VERSION_SECONDS)

    transaction.on_commit(bump, robust=True)  # committed: a Redis error is logged, not raised


class AnswerCache:
    """Rendered answers of public read endpoints (practitioner search, availability), shared
    by every web process through Redis.

    An entry holds the clinic's data version it was computed at, and the versions of its
    `scopes` (`calendar_scopes`), and is served only while those are still the versions: the
    versions and the entry come in one round trip (MGET), and every committed write the
    answer depends on sets a new version (`clinic_data_changed`, or `calendar_changed` for
    the weeks an appointment touches). The versions are read before the database, so an
    answer computed while a write commits is stored under the versions before it: stale at
    once, never served. Entries also expire
    (the kind's `ANSWER_CACHE_SECONDS_BY_KIND`, else `ANSWER_CACHE_SECONDS`; less when the
    answer names a moment that will pass sooner), so answers that depend on the clock move
    on. 0 seconds turns the kind's cache off. Each lookup is counted per clinic and kind
    (`answer_stats_count`)."""

    def __init__(self, name: str):
        if name not in settings.ANSWER_CACHE_KINDS:
            raise ValueError(f"Unknown answer kind {name!r}: add it to ANSWER_CACHE_KINDS.")
        self.name = name

    @property
    def seconds(self) -> int:
        return answer_cache_seconds(self.name)

    def _key(self, params: tuple) -> str:
        digest = hashlib.blake2b(repr(params).encode(), digest_size=16).hexdigest()
        return f"answer:{self.name}:{digest}"

    def answer(
        self,
        params: tuple,
        compute: Callable[[], tuple[bytes, float]],
        scopes: Sequence[str] = (),
    ) -> HttpResponse:
        """The JSON answer for `params`: from the cache, or `compute()` -> (body, the seconds
        it holds at most, 0 for the kind's seconds), stored before it is returned. `scopes`:
        the calendar version keys the answer also depends on (`calendar_scopes`)."""
        body, versions = self._get(params, scopes)
        hit = body is not None
        metrics.answer_cache_lookup(self.name, hit)
        if body is None:
            body, seconds = compute()
            self._put(params, versions, body, seconds)
        if self.seconds:
            answer_stats_count(tenant_connection.schema_name, self.name, hit)
        return HttpResponse(body, content_type="application/json")

    def _get(self, params: tuple, scopes: Sequence[str]) -> tuple[bytes | None, tuple | None]:
        """`(body, versions)`: the cached body or None, and the versions (the clinic's, then
        each scope's) to store a new one at; None when one cannot be read."""
        if not self.seconds:
            return None, None
        key = self._key(params)
        wanted = [ANSWERS_VERSION_KEY, *scopes]
        found = cache.get_many([*wanted, key])
        if missing := [name for name in wanted if name not in found]:
            for name in missing:  # made once; a racing reader's stays
                seconds = None if name == ANSWERS_VERSION_KEY else CALENDAR_VERSION_SECONDS
                cache.add(name, uuid.uuid4().hex, seconds)
            found |= cache.get_many(missing)
            if any(name not in found for name in missing):
                return None, None  # Redis did not answer: compute, store nothing
            return None, tuple(found[name] for name in wanted)
        versions = tuple(found[name] for name in wanted)
        entry = found.get(key)
        if entry is not None and entry[0] == versions:
            return entry[1], versions
        return None, versions

    def _put(self, params: tuple, versions: tuple | None, body: bytes, seconds: float) -> None:
        timeout = min(self.seconds, seconds) if seconds > 0 else self.seconds
        if versions is not None and timeout >= 1:
            cache.set(self._key(params), (versions, body), int(timeout))


def answer_cache_seconds(kind: str) -> int:
    """How long an answer of `kind` is shared at most (0: not cached)."""
    return settings.ANSWER_CACHE_SECONDS_BY_KIND.get(kind, settings.ANSWER_CACHE_SECONDS)


# Answer-cache statistics: hits and misses per clinic and kind, for the platform operator.
# One Redis hash for the deployment, whatever the number of clinics (`answer_stats_key`); its
# fields are `<schema> TAB <kind> TAB hits|misses|since`, `since` the first lookup counted
# after the last reset (Unix seconds). A lookup is summed in the process and written with its
# batch (clinic.counting: HINCRBY, HSETNX), off the request: a Redis outage delays the counts,
# never a request.

_STATS_SEPARATOR = "\t"


def answer_stats_key() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:answer-stats"


def answer_stats_reset_key() -> str:
    return f"{answer_stats_key()}:reset"


def _stats_client():
    return cache._cache.get_client(write=True)  # Django's RedisCache client


def answer_stats_count(schema: str, kind: str, hit: bool) -> None:
    """Count one lookup of `kind` in `schema`'s answers (a hit or a miss)."""
    prefix = f"{schema}{_STATS_SEPARATOR}{kind}{_STATS_SEPARATOR}"
    counting.hash_add(
        answer_stats_key(),
        prefix + ("hits" if hit else "misses"),
        first=(prefix + "since", f"{time.time():.3f}"),
    )


def _when(value) -> str | None:
    if value is None:
        return None
    moment = datetime.fromtimestamp(float(value), tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _rate(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None


def answer_stats() -> dict:
    """Hits, misses, hit rate and the first lookup counted, per clinic (schema) and kind;
    the same added up per kind, with each kind's seconds; when the counters were last reset
    (this process's counts included; other processes' within `COUNTS_FLUSH_SECONDS`). Raises
    `RedisUnavailableError` when Redis does not answer."""
    counting.flush()
    pipe = _stats_client().pipeline(transaction=False)
    pipe.hgetall(answer_stats_key())
    pipe.get(answer_stats_reset_key())
    fields, reset_at = redis_call("answer-stats", pipe.execute, raising=True)
    clinics: dict[str, dict[str, dict[str, Any]]] = {}
    for field, value in fields.items():
        schema, kind, name = _text(field).split(_STATS_SEPARATOR)
        row = clinics.setdefault(schema, {}).setdefault(kind, {"hits": 0, "misses": 0})
        row[name] = float(value) if name == "since" else int(value)
    kinds: dict[str, dict[str, Any]] = {
        kind: {"seconds": answer_cache_seconds(kind), "hits": 0, "misses": 0}
        for kind in settings.ANSWER_CACHE_KINDS
    }
    for by_kind in clinics.values():
        for kind, row in by_kind.items():
            row["hit_rate"] = _rate(row["hits"], row["misses"])
            row["since"] = _when(row.get("since"))
            if kind in kinds:
                kinds[kind]["hits"] += row["hits"]
                kinds[kind]["misses"] += row["misses"]
    for total in kinds.values():
        total["hit_rate"] = _rate(total["hits"], total["misses"])
    return {
        "reset_at": _when(reset_at),
        "kinds": kinds,
        "clinics": {schema: clinics[schema] for schema in sorted(clinics)},
    }


def answer_stats_reset(schema: str | None = None, *, operator=None) -> int:
    """Zero the counters of `schema`, or of every clinic: returns how many counters (fields)
    went. A full reset also notes when (`reset_at`). An `operator`'s reset is recorded in the
    platform admin's history of operator actions (Django's LogEntry in the public schema: its
    "Recent actions") and the log. Raises `RedisUnavailableError` when Redis does not answer."""
    counting.flush()  # this process's counts so far go with the reset
    client = _stats_client()
    key = answer_stats_key()

    def reset() -> int:
        if schema is None:
            pipe = client.pipeline(transaction=True)  # MULTI: the count and the DEL as one
            pipe.hlen(key)
            pipe.delete(key)
            pipe.set(answer_stats_reset_key(), f"{time.time():.3f}")
            return pipe.execute()[0]
        prefix = f"{schema}{_STATS_SEPARATOR}"
        fields = [f for f in client.hkeys(key) if _text(f).startswith(prefix)]
        return client.hdel(key, *fields) if fields else 0

    removed = redis_call("answer-stats", reset, raising=True)
    if operator is not None:
        from django.contrib.admin.models import CHANGE, LogEntry  # a model: not while apps load

        what = f"clinic {schema}" if schema else "every clinic"
        LogEntry.objects.create(
            user_id=operator.pk,
            content_type=None,
            object_id=schema or "",
            object_repr=f"Answer-cache statistics of {what}"[:200],
            action_flag=CHANGE,
            change_message=f"Reset the answer-cache statistics of {what} ({removed} counters).",
        )
        log.info("answer-cache statistics of %s reset by user %s", what, operator.pk)
    return removed
