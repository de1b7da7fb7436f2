"""Cross-cutting API pieces: pagination, ordering and rendering."""

from django.core.paginator import Page
from django.db.models import Count, QuerySet, Window
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
