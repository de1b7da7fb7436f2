"""Reads of the public schema shared by the HTTP middleware, the websocket middleware and tasks."""

import functools
import threading
import time
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django_tenants.utils import quote_schema_name, schema_context

from .models import Clinic, Domain, WorkDue

_cache: dict[str, tuple[float, Clinic | None]] = {}
_cache_lock = threading.Lock()


def hostname_normalize(host: str) -> str:
    """`Acme.localhost:8000` -> `acme.localhost` (port and trailing dot dropped)."""
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def clinic_for_host(hostname: str) -> Clinic | None:
    """The clinic (or the platform row) that serves `hostname`, or None.

    TenantMainMiddleware looks the domain up on every request; this keeps the answer per
    process for CLINIC_DOMAIN_CACHE_SECONDS. A change saved in this process clears the cache at
    once; other processes see it within the TTL.
    """
    ttl = settings.CLINIC_DOMAIN_CACHE_SECONDS
    now = time.monotonic()
    if ttl:
        hit = _cache.get(hostname)
        if hit and hit[0] > now:
            return hit[1]
    with schema_context("public"):
        domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    clinic = domain.tenant if domain else None
    if ttl:
        with _cache_lock:
            _cache[hostname] = (now + ttl, clinic)
    return clinic


def clinic_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


@receiver([post_save, post_delete], sender=Clinic)
@receiver([post_save, post_delete], sender=Domain)
def _clear_on_change(**kwargs) -> None:
    # Not a business rule: keeps the per-process lookup cache honest.
    clinic_cache_clear()


def clinic_list() -> list[Clinic]:
    """All clinics (the platform row excluded), with their domains."""
    with schema_context("public"):
        return list(Clinic.objects.exclude(schema_name="public").prefetch_related("domains"))


@functools.cache
def migration_nodes() -> frozenset[tuple[str, str]]:
    """Every migration of the code, as (app, name): what a current schema's django_migrations
    records (a clinic schema records every app's migrations, its own and the shared ones)."""
    from django.db.migrations.loader import MigrationLoader

    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def schemas_with_pending_migrations(schema_names: Iterable[str]) -> list[str]:
    """The schemas, in the order given, whose django_migrations lacks a migration of the code
    (or which have no such table).

    One query per 200 schemas (`schemas_where`). Django's own check (the migrate command)
    introspects the table list of the search path, which scans the catalog rows of every
    clinic: 0.1 s per schema at 220 clinics and growing with their number (bench/README.md,
    tenant scale); one query per schema still cost 6 ms each at 1,000 clinics.
    """
    schemas = list(schema_names)
    expected = sorted(f"{app}.{name}" for app, name in migration_nodes())
    behind = set(
        schemas_where(
            schemas,
            table="django_migrations",
            sql="SELECT 1 FROM unnest(%s::text[]) AS code(migration) WHERE NOT EXISTS "
            "(SELECT 1 FROM {schema}.django_migrations m "
            "WHERE m.app || '.' || m.name = code.migration)",
            params=[expected],
        )
    )
    migrated = set(schemas_with_table(schemas, "django_migrations"))
    return [schema for schema in schemas if schema in behind or schema not in migrated]


def schemas_missing(schemas: Iterable[str]) -> list[str]:
    """The schemas, of those given, that do not exist: one indexed lookup each."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s FROM unnest(%s::text[]) AS s WHERE to_regnamespace(quote_ident(s)) IS NULL",
            [list(schemas)],
        )
        return [row[0] for row in cursor.fetchall()]


def schemas_with_table(schemas: Iterable[str], table: str) -> list[str]:
    """The schemas, of those given, that hold `table`: one indexed lookup each (to_regclass);
    a join of pg_class on the table's name visited that table in every clinic's schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s FROM unnest(%s::text[]) AS s "
            "WHERE to_regclass(quote_ident(s) || '.' || quote_ident(%s)) IS NOT NULL",
            [list(schemas), table],
        )
        return [row[0] for row in cursor.fetchall()]


def schemas_where(schemas: Iterable[str], *, table: str, sql: str, params: list) -> list[str]:
    """The schemas, of those given, where `sql` returns a row: one UNION ALL query per 200
    schemas instead of one per clinic (a beat that visits every clinic stays milliseconds at
    hundreds of clinics). `sql` is a SELECT with `{schema}` where the quoted schema name goes
    (`FROM {schema}.scheduling_nextavailable ...`), run with `params` for each schema.
    Schemas without `table` (a clinic being created, not migrated yet) are left out."""
    schemas = list(schemas)
    if not schemas:  # the beat's usual case (tenants.models.WorkDue): no query at all
        return []
    ready = sorted(schemas_with_table(schemas, table))
    with connection.cursor() as cursor:
        found = []
        for at in range(0, len(ready), 200):
            chunk = ready[at : at + 200]
            cursor.execute(
                " UNION ALL ".join(
                    f"(SELECT %s FROM ({sql.format(schema=quote_schema_name(s))}) q LIMIT 1)"
                    for s in chunk
                ),
                [value for schema in chunk for value in (schema, *params)],
            )
            found += [row[0] for row in cursor.fetchall()]
    return found


def clinics_with_work_due(kind: str, *, now: datetime | None = None) -> list[Clinic]:
    """The active clinics whose `kind` of background work is due by `now`
    (tenants.models.WorkDue): one indexed query, whatever the number of clinics; the others
    are not even loaded. A sweep visits these, then settles them
    (tenants.services.work_due_settle)."""
    due = WorkDue.objects.filter(kind=kind, due_at__lte=now or timezone.now())
    return list(
        Clinic.objects.filter(is_active=True, schema_name__in=due.values("schema_name"))
        .exclude(schema_name="public")
        .order_by("schema_name")
    )
