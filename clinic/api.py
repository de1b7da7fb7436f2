"""Cross-cutting API pieces: pagination and rendering."""

from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200


class JSONRenderer(DRFJSONRenderer):
    """Compact JSON; problem details keep their own content type (set on the response)."""

    compact = True
