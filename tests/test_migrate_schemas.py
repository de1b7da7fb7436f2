"""`migrate_schemas` runs Django's migrate only in the clinics whose django_migrations lacks a
migration of the code; the others cost two indexed queries each (a no-op upgrade over 1,000
clinics took minutes otherwise: bench/README.md, tenant scale)."""

from django.core.management import call_command
from django.db import connection
from django_tenants.migration_executors.standard import StandardExecutor

from tenants.selectors import schemas_with_pending_migrations


def _forget(schema: str, app: str = "tenants") -> None:
    """Make `schema` look one migration behind. The shared `tenants` app has no tables in a
    clinic schema, so migrating it again only records it."""
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


def test_migrate_schemas_skips_clinics_that_are_up_to_date(db, monkeypatch):
    runs = _spy(monkeypatch)
    call_command("migrate_schemas", verbosity=0)
    assert runs == [["public"], ["clinic_template"]]

    _forget("acme")
    runs.clear()
    call_command("migrate_schemas", verbosity=0)
    assert runs == [["public"], ["acme"], ["clinic_template"]]


def test_migrate_schemas_all_schemas_runs_every_clinic(db, monkeypatch):
    runs = _spy(monkeypatch)
    call_command("migrate_schemas", all_schemas=True, verbosity=0)
    assert runs[0] == ["public"]
    assert set(runs[1]) == {"acme", "globex"}
    assert runs[2] == ["clinic_template"]


def test_migrate_schemas_brings_a_behind_clinic_up_to_date(committed):
    _forget("globex")
    assert schemas_with_pending_migrations(["globex"]) == ["globex"]
    call_command("migrate_schemas", verbosity=0)
    assert schemas_with_pending_migrations(["acme", "globex", "clinic_template"]) == []
