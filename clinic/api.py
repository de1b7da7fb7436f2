"""Cross-cutting API pieces: pagination, ordering and rendering."""

from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200


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
