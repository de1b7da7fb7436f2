"""`migrate_schemas` checks only the clinics not recorded at the code's schema state, and runs
Django's migrate only in those whose django_migrations lacks a migration of the code (a no-op
upgrade over 1,000 clinics took minutes otherwise: bench/README.md, tenant scale)."""

import io
import uuid

from django.core.management import call_command
from django.db import connection
from django_tenants.migration_executors.standard import StandardExecutor

from tenants.management.commands import migrate_schemas
from tenants.models import Clinic
from tenants.selectors import schemas_with_pending_migrations


def _forget(schema: str, app: str = "usage") -> None:
    """Make `schema` look one app behind. The shared `usage` app has no tables in a clinic
    schema, so migrating it again only records it; no other app's migration depends on it
    (the work-due triggers of the clinic apps depend on `tenants`: forgetting that one would
    leave their records before their dependency's)."""
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s', [app])


def _spy(monkeypatch) -> list[list[str]]:
    runs: list[list[str]] = []
    monkeypatch.setattr(
        StandardExecutor, "run_migrations", lambda self, tenants=None: runs.append(list(tenants))
    )
    return runs


def test_pending_migrations_are_found_per_schema(db):
    assert schemas_with_pending_migrations(["acme", "globex"]) == []
    _forget("acme")
    assert schemas_with_pending_migrations(["acme", "globex", "no_such_schema"]) == [
        "acme",
        "no_such_schema",
    ]


def _deploy(monkeypatch, state: str) -> None:
    """As after a deploy with a new migration or grant: the code's schema state changes."""
    monkeypatch.setattr(migrate_schemas, "schema_state", lambda: state)


def _recorded() -> dict[str, str]:
    return dict(
        Clinic.objects.filter(slug__in=["acme", "globex"]).values_list("slug", "schema_state")
    )


def test_migrate_schemas_checks_only_clinics_recorded_at_another_state(db, monkeypatch):
    runs = _spy(monkeypatch)
    _deploy(monkeypatch, "state-1")
    call_command("migrate_schemas", verbosity=0)
    assert runs == [["public"], ["clinic_template"]]  # both checked, neither behind
    assert _recorded() == {"acme": "state-1", "globex": "state-1"}

    # The record is trusted, as django_migrations is: a row deleted by hand is not looked for.
    _forget("acme")
    runs.clear()
    call_command("migrate_schemas", verbosity=0)
    assert runs == [["public"], ["clinic_template"]]

    # A new state (a deploy) checks every clinic again, and migrates the one behind.
    _deploy(monkeypatch, "state-2")
    runs.clear()
    call_command("migrate_schemas", verbosity=0)
    assert runs == [["public"], ["acme"], ["clinic_template"]]
    assert _recorded() == {"acme": "state-2", "globex": "state-2"}


def test_migrate_schemas_all_schemas_runs_every_clinic_and_records_them(db, monkeypatch):
    runs = _spy(monkeypatch)
    _deploy(monkeypatch, "state-1")
    call_command("migrate_schemas", all_schemas=True, verbosity=0)
    assert runs[0] == ["public"]
    assert set(runs[1]) == {"acme", "globex"}
    assert runs[2] == ["clinic_template"]
    assert _recorded() == {"acme": "state-1", "globex": "state-1"}


def test_a_targeted_migrate_clears_the_record_of_the_clinic_it_touched(db, monkeypatch):
    """`migrate_schemas --schema acme tenants 0001` may leave acme behind: the next plain run
    checks it (and finds it behind), whatever its record said."""
    runs = _spy(monkeypatch)
    _deploy(monkeypatch, "state-1")
    call_command("migrate_schemas", verbosity=0)
    call_command("migrate_schemas", schema_name="acme", verbosity=0)
    assert _recorded() == {"acme": "", "globex": "state-1"}

    _forget("acme")  # what the targeted run would have done
    runs.clear()
    call_command("migrate_schemas", verbosity=0)
    assert runs == [["public"], ["acme"], ["clinic_template"]]
    assert _recorded() == {"acme": "state-1", "globex": "state-1"}


def test_migrate_schemas_brings_a_behind_clinic_up_to_date(committed, monkeypatch):
    _forget("globex")
    assert schemas_with_pending_migrations(["globex"]) == ["globex"]
    _deploy(monkeypatch, f"state-{uuid.uuid4().hex[:8]}")
    call_command("migrate_schemas", verbosity=0)
    assert schemas_with_pending_migrations(["acme", "globex", "clinic_template"]) == []


def test_the_table_list_is_the_schemas_own(db):
    """The backend's table list (read through pg_depend) is Django's (which tests the
    visibility of every relation of the database) for a clinic and for the public schema."""
    from django.db.backends.postgresql.introspection import DatabaseIntrospection
    from django_tenants.postgresql_backend.introspection import (
        DatabaseSchemaIntrospectionSearchPathContext,
    )
    from django_tenants.utils import schema_context

    for schema in ("acme", "public"):
        with schema_context(schema), connection.cursor() as cursor:
            ours = connection.introspection.get_table_list(cursor)
            with DatabaseSchemaIntrospectionSearchPathContext(cursor, connection):
                djangos = DatabaseIntrospection.get_table_list(connection.introspection, cursor)
        assert sorted(ours) == sorted(djangos)
        assert "django_migrations" in {table.name for table in ours}
    assert len(ours) > 20


def test_a_clinic_row_without_its_schema_does_not_stop_the_upgrade(db, monkeypatch):
    """A provisioning killed between the clinic's row and its schema leaves the row: the
    upgrade names it and migrates the others; its state stays unrecorded."""
    runs = _spy(monkeypatch)
    _deploy(monkeypatch, "state-1")
    Clinic.objects.bulk_create([Clinic(schema_name="halfmade", slug="halfmade", name="Half")])
    _forget("acme")
    err = io.StringIO()
    call_command("migrate_schemas", verbosity=0, stderr=err)
    assert "1 clinics have no schema" in err.getvalue() and "halfmade" in err.getvalue()
    assert runs == [["public"], ["acme"], ["clinic_template"]]
    assert _recorded() == {"acme": "state-1", "globex": "state-1"}
    assert Clinic.objects.get(slug="halfmade").schema_state == ""
