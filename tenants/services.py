"""Provisioning: create, suspend and reactivate clinics; keep the template schema current."""

import functools
import hashlib
import logging
import secrets
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone as django_timezone
from django.utils.module_loading import import_string
from django_tenants.utils import quote_schema_name, schema_context, schema_exists
from psycopg import sql

from .models import Clinic, Domain

logger = logging.getLogger(__name__)


class ProvisioningError(RuntimeError):
    """A new clinic's schema failed a provisioning check: the clinic was removed again."""


def provisioning_problems(schema: str) -> list[str]:
    """What the checks of settings.CLINIC_PROVISION_CHECKS find wrong with a new clinic's
    schema (each a dotted path to `check(schema) -> list[str]`; by default
    `tenants.clone.tables_placed`: the template's tables are all there, and on Citus all on a
    worker)."""
    return [
        problem
        for path in settings.CLINIC_PROVISION_CHECKS
        for problem in import_string(path)(schema)
    ]


@dataclass(frozen=True)
class ClinicAdminSpec:
    email: str
    password: str
    full_name: str = ""


def clinic_host(slug: str) -> str:
    return f"{slug}.{settings.CLINIC_BASE_DOMAIN}"


def platform_ensure(*, name: str = "Clinic platform") -> Clinic:
    """The public-schema row and the bare base domain that serve the platform pages."""
    with schema_context("public"):
        platform, _ = Clinic.objects.get_or_create(
            schema_name="public", defaults={"slug": "platform", "name": name}
        )
        Domain.objects.get_or_create(
            domain=settings.CLINIC_BASE_DOMAIN, defaults={"tenant": platform, "is_primary": True}
        )
    return platform


def template_is_current() -> bool:
    """True when the template schema exists and has every tenant migration applied."""
    from .selectors import schemas_with_pending_migrations

    template = settings.CLINIC_TEMPLATE_SCHEMA
    return schema_exists(template) and not schemas_with_pending_migrations([template])


def template_sync(*, verbosity: int = 0) -> None:
    """Create the template schema if missing and migrate it, then (re)create the roles in it.

    New clinics are cloned from this schema, so it must be as current as the code: the
    `migrate_schemas` command calls this after migrating the clinics.
    """
    from accounts.roles import roles_sync

    template = settings.CLINIC_TEMPLATE_SCHEMA
    with schema_context("public"):
        if not schema_exists(template):
            # A local schema on Citus (settings.CLINIC_TEMPLATE_SCHEMA): its tables stay on the
            # coordinator, where every migration may run. Plain PostgreSQL keeps the setting as
            # a placeholder, for this transaction only.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL citus.enable_schema_based_sharding TO off")
                cursor.execute(f'CREATE SCHEMA "{template}"')
        call_command(
            "migrate_schemas",
            tenant=True,
            schema_name=template,
            interactive=False,
            verbosity=verbosity,
        )
    with schema_context(template):
        roles_sync()


def clinics_roles_sync(*, schemas: Iterable[str] | None = None) -> int:
    """Bring the role groups of every clinic (or of those of `schemas` that are clinics) up to
    the apps' grants.

    Clinics are cloned with the roles of their day; when an app adds models and grants, the
    clinics that already exist learn them here (`migrate_schemas` calls it). The groups of
    every clinic are compared with the grants in one query per 200 clinics (a fingerprint);
    only the clinics that differ are synced. Returns their number.
    """
    from accounts.roles import ROLES_FINGERPRINT_SQL, roles_fingerprint, roles_sync, roles_wanted

    from .selectors import schemas_where

    with schema_context("public"):
        clinics = Clinic.objects.exclude(schema_name="public")
        if schemas is not None:
            clinics = clinics.filter(schema_name__in=list(schemas))
        wanted = roles_wanted()
        roles = sorted(wanted)
        stale = schemas_where(
            clinics.values_list("schema_name", flat=True),
            table="auth_group",
            sql=f"SELECT 1 WHERE ({ROLES_FINGERPRINT_SQL}) <> %s "
            "OR (SELECT count(*) FROM {schema}.auth_group WHERE name = ANY(%s)) <> %s",
            params=[roles, roles_fingerprint(wanted), roles, len(roles)],
        )
    for schema in stale:
        with schema_context(schema):
            roles_sync()
    return len(stale)


def schema_state() -> str:
    """What a current clinic schema holds, as a digest: every migration of the code and the
    roles' grants. `migrate_schemas` records it on each clinic it brought or found there
    (`Clinic.schema_state`), and visits only the clinics recorded at another."""
    from accounts.roles import roles_fingerprint, roles_wanted

    return f"{template_version()}-{roles_fingerprint(roles_wanted())[:16]}"


@functools.cache
def _hashing() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="provision-password")


def clinic_create(
    *,
    slug: str,
    name: str,
    timezone: str = "UTC",
    admin: ClinicAdminSpec | None = None,
    extra_domains: tuple[str, ...] = (),
    published: bool = True,
) -> Clinic:
    """Provision a clinic: clone the migrated template schema, add its domain, its roles and
    its first admin user.

    Cloning copies tables, constraints and role groups in one SQL call instead of replaying
    every migration. Raises ValidationError on a bad slug, name or timezone (nothing written).
    `published=False` (the platform admin's and `create_clinic`'s way) keeps the patient pages
    closed until the clinic's admin publishes them (`clinic_publish`).
    """
    from accounts.roles import roles_sync
    from accounts.services import user_create

    if not template_is_current():
        template_sync()
    clinic = Clinic(
        slug=slug,
        schema_name=slug.replace("-", "_"),
        name=name,
        timezone=timezone,
        published_at=django_timezone.now() if published else None,
        # A copy of the current template (from the pool or cloned) with its roles synced
        # below: what migrate_schemas would find, so its next run passes the clinic by.
        schema_state=schema_state(),
    )
    clinic.full_clean(validate_unique=True)
    password_hash: Future[str] | None = None
    if admin is not None:
        from django.contrib.auth.hashers import make_password
        from django.contrib.auth.password_validation import validate_password

        validate_password(admin.password)
        # The production hasher costs ~0.2 s of CPU: done on a thread (argon2 releases the GIL)
        # while PostgreSQL clones the schema, not after it.
        password_hash = _hashing().submit(make_password, admin.password)
    with schema_context("public"):
        clinic.save(verbosity=0)  # django-tenants clones the template here
        try:
            if problems := provisioning_problems(clinic.schema_name):
                raise ProvisioningError("; ".join(problems))
            with transaction.atomic():
                Domain.objects.create(domain=clinic_host(slug), tenant=clinic, is_primary=True)
                for domain in extra_domains:
                    Domain.objects.create(domain=domain, tenant=clinic, is_primary=False)
            with schema_context(clinic.schema_name):
                roles_sync()
                if admin is not None:
                    user_create(
                        email=admin.email,
                        password=admin.password,
                        full_name=admin.full_name or "Clinic administrator",
                        roles=("clinic_admin",),
                        password_hash=password_hash.result() if password_hash else None,
                    )
        except Exception:
            clinic.delete(force_drop=True)
            raise
    if settings.CLINIC_SCHEMA_POOL_SIZE:
        from .tasks import schema_pool_refill_task

        # robust: the clinic is there; a broker error is logged, and the beat refills later
        transaction.on_commit(schema_pool_refill_task.delay, robust=True)
    logger.info("clinic %s provisioned", slug)
    return clinic


# The warm pool --------------------------------------------------------------------------------
# Copies of the template kept ready, named `pool_<template version>_<random>`, so that a new
# clinic's schema is a rename (milliseconds, whatever the number of clinics) rather than a clone
# (about a second, more as the catalog grows). The version is a digest of the code's migrations:
# a copy made before a migration is never taken, and the next refill drops it. A copy is
# visible only once its clone has committed, and two provisionings never take the same one (the
# rename locks it; the loser moves on to the next). Nothing else sees these schemas: they are
# no clinic's (no `Clinic` row), so migrate_schemas, the beat and backups pass them by.

POOL_PREFIX = "pool_"
_POOL_LOCK = 0x706F6F6C  # pg_advisory_lock key of the refill: one refill at a time


@functools.cache
def template_version() -> str:
    """A digest of every migration of the code: the template's version once migrated."""
    from .selectors import migration_nodes

    nodes = repr(sorted(migration_nodes())).encode()
    return hashlib.blake2b(nodes, digest_size=5).hexdigest()


def schema_pool() -> list[str]:
    """Every pooled schema, of any version, oldest name first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname",
            [POOL_PREFIX.replace("_", "\\_") + "%"],
        )
        return [row[0] for row in cursor.fetchall()]


def schema_pool_take(dest: str) -> bool:
    """Rename a pooled copy of the current template to `dest`: False when the pool is off or
    holds none of this version."""
    if not settings.CLINIC_SCHEMA_POOL_SIZE:
        return False
    ready = f"{POOL_PREFIX}{template_version()}_"
    for name in (name for name in schema_pool() if name.startswith(ready)):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(
                    sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                        sql.Identifier(name), sql.Identifier(dest)
                    )
                )
                # not for the rest of a caller's transaction (the admin's save is one)
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            return True
        except DatabaseError:  # another provisioning took it (or holds it): the next one
            continue
    return False


def schema_pool_refill() -> tuple[int, int]:
    """Drop the pooled copies of another template version, then clone the template until the
    pool holds `CLINIC_SCHEMA_POOL_SIZE` copies (0: drop them all). Returns (made, dropped).
    Does nothing while another refill runs or while the template is behind the code (the
    next `migrate_schemas` brings it up to date and refills)."""
    from .clone import CloneUnsupported, schema_clone

    size = settings.CLINIC_SCHEMA_POOL_SIZE
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_POOL_LOCK])
        if not cursor.fetchone()[0]:
            return 0, 0
    try:
        ready = f"{POOL_PREFIX}{template_version()}_"
        pooled = schema_pool()
        stale = [name for name in pooled if not name.startswith(ready) or not size]
        for name in stale:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
        made = 0
        if size and template_is_current():
            for _ in range(size - (len(pooled) - len(stale))):
                try:
                    schema_clone(
                        source=settings.CLINIC_TEMPLATE_SCHEMA,
                        dest=f"{ready}{secrets.token_hex(4)}",
                    )
                except CloneUnsupported as exc:  # provisioning clones the slow way meanwhile
                    logger.warning("no warm pool: %s", exc)
                    break
                made += 1
        if made or stale:
            logger.info("schema pool: %d made, %d dropped", made, len(stale))
        return made, len(stale)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_POOL_LOCK])


def clinic_set_active(*, clinic: Clinic, is_active: bool, reason: str = "") -> Clinic:
    """Suspend (the patient pages say "temporarily unavailable", the staff's pages show the
    reason, the API and websockets answer 403) or reactivate a clinic."""
    if clinic.is_platform:
        raise ValidationError({"is_active": "The platform cannot be suspended."})
    reason = "" if is_active else reason.strip()
    suspended_at = None if is_active else django_timezone.now()
    with schema_context("public"):
        Clinic.objects.filter(pk=clinic.pk).update(
            is_active=is_active, suspended_reason=reason, suspended_at=suspended_at
        )
        clinic.is_active, clinic.suspended_reason = is_active, reason
        clinic.suspended_at = suspended_at
    from .selectors import clinic_cache_clear

    clinic_cache_clear()
    return clinic


def clinic_suspend(*, clinic: Clinic, reason: str = "") -> Clinic:
    return clinic_set_active(clinic=clinic, is_active=False, reason=reason)


def clinic_publish(*, clinic: Clinic) -> Clinic:
    """Open the clinic's patient pages (once; publishing again changes nothing)."""
    with schema_context("public"):
        Clinic.objects.filter(pk=clinic.pk, published_at__isnull=True).update(
            published_at=django_timezone.now()
        )
        clinic.published_at = Clinic.objects.values_list("published_at", flat=True).get(
            pk=clinic.pk
        )
    from .selectors import clinic_cache_clear

    clinic_cache_clear()
    return clinic


def clinic_reactivate(*, clinic: Clinic) -> Clinic:
    return clinic_set_active(clinic=clinic, is_active=True)


_WORK_DUE_ROW = "public.tenants_workdue WHERE schema_name = %s AND kind = %s"


def work_due_settle(kind: str, schemas: Iterable[str], *, sql: str, params: list) -> None:
    """After a sweep of `kind` in these clinics: record for each when its rows are next due,
    or remove its row when none can become due (tenants.models.WorkDue). `sql` is a SELECT of
    one timestamptz (NULL: nothing) with `{schema}` where the quoted schema name goes, like
    tenants.selectors.schemas_where's.

    Each clinic's advisory lock on (clinic, kind) is taken exclusively first, which waits for
    the transactions that may have marked it due (their trigger holds it shared until they
    end); `sql`, a later statement, sees their rows. A lock still held after
    WORK_DUE_SETTLE_LOCK_MS (a clinic writing all along) leaves the clinic due, for the next
    beat."""
    for schema in schemas:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)",
                    [f"{settings.WORK_DUE_SETTLE_LOCK_MS}ms"],
                )
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", [schema, kind]
                )
                cursor.execute(sql.format(schema=quote_schema_name(schema)), params)
                (due,) = cursor.fetchone()
                if due is None:
                    cursor.execute(f"DELETE FROM {_WORK_DUE_ROW}", [schema, kind])
                else:
                    cursor.execute(
                        "INSERT INTO public.tenants_workdue (schema_name, kind, due_at) "
                        "VALUES (%s, %s, %s) "
                        "ON CONFLICT (schema_name, kind) DO UPDATE SET due_at = EXCLUDED.due_at",
                        [schema, kind, due],
                    )
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            logger.info("%s of %s stays due: its writers held it", kind, schema)
