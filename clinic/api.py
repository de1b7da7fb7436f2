"""Cross-cutting API pieces: pagination, ordering, rendering and rate limits."""

from django.core.paginator import Page
from django.db.models import Count, QuerySet, Window
from rest_framework import throttling
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200


class WindowCountPagination(Pagination):
    """Page-number pagination in one query: the total rides on every row of the page as
    `COUNT(*) OVER ()`, instead of a separate `SELECT COUNT(*)` that plans and filters the
    whole search again. Same response shape as `Pagination`. For querysets without DISTINCT
    or aggregation (the window counts rows before LIMIT)."""

    TOTAL = "window_total"

    def paginate_queryset(self, queryset: QuerySet, request, view=None):
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        number = request.query_params.get(self.page_query_param) or 1
        if number in self.last_page_strings:
            return super().paginate_queryset(queryset, request, view)  # needs the count first
        try:
            number = int(number)
            if number < 1:
                raise ValueError
        except (TypeError, ValueError):
            message = self.invalid_page_message.format(page_number=number, message="")
            raise NotFound(message) from None
        offset = (number - 1) * page_size
        counted = queryset.annotate(**{self.TOTAL: Window(Count("*"))})
        rows = list(counted[offset : offset + page_size])
        if not rows and number > 1:
            raise NotFound(
                self.invalid_page_message.format(
                    page_number=number, message="That page contains no results"
                )
            )
        paginator = self.django_paginator_class(queryset, page_size)
        paginator.__dict__["count"] = getattr(rows[0], self.TOTAL) if rows else 0  # cached
        self.page = Page(rows, number, paginator)
        return rows


class JSONRenderer(DRFJSONRenderer):
    """Compact JSON; problem details keep their own content type (set on the response)."""

    compact = True


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
    Redis: one INCR + EXPIRE round trip, whatever the rate. A fixed window lets a client send
    up to twice the rate across a window boundary; the limits here are abuse guards, not quotas.
    """

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
            redis = self.cache._cache  # Django's RedisCache
        except AttributeError:  # another cache backend: two round trips
            self.cache.add(name, 0, self.duration + 1)
            count = self.cache.incr(name)
        else:
            key = self.cache.make_and_validate_key(name)
            pipe = redis.get_client(key, write=True).pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.duration + 1, nx=True)
            count = pipe.execute()[0]
        return count <= self.num_requests

    def wait(self) -> float:
        return self.wait_seconds


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
