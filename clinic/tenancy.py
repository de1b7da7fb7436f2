"""What django-tenants adds at run time, typed for mypy.

django-stubs types `django.db.connection` as Django's base database wrapper and a request as
Django's or DRF's: neither knows that django-tenants' PostgreSQL backend keeps the schema and
tenant in use on the connection, nor that tenants.middleware.ClinicMiddleware puts the clinic
on the request. Read them through here rather than through untyped attributes at each call.
"""

from typing import TYPE_CHECKING, Any, Protocol, cast

from django.db import connection
from django.http import HttpRequest

if TYPE_CHECKING:
    from rest_framework.request import Request


class TenantConnection(Protocol):
    """The part of django-tenants' database wrapper the apps use."""

    schema_name: str
    # A tenants.Clinic after set_tenant() / tenant_context() (requests, Celery tasks), a stand-in
    # carrying only `schema_name` after set_schema() / schema_context(). Any: the kernel imports
    # no app.
    tenant: Any

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None: ...

    def set_schema_to_public(self) -> None: ...


# The same object as `django.db.connection` (a proxy to the thread's default connection),
# typed as the django-tenants backend it is (settings.DATABASES).
tenant_connection = cast(TenantConnection, connection)


class RequestTenant(Protocol):
    """What the apps read of the clinic on a request (a tenants.Clinic)."""

    @property
    def slug(self) -> str: ...

    @property
    def timezone(self) -> str: ...


def request_tenant(request: "HttpRequest | Request") -> RequestTenant:
    """The clinic ClinicMiddleware selected for the request from its Host."""
    return request.tenant  # type: ignore[union-attr]  # set by the middleware, unknown to the stubs
