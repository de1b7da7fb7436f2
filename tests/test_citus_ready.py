"""The code stays ready for Citus schema-based sharding (issue 21, part 8; README "Growing past
one machine"): constraint names read from a worker's message, no tenant migration changing an
identity column's type, and a database's internal error (SQLSTATE XX000) answered as a 503."""

import pytest
from django.conf import settings
from django.db import IntegrityError, InternalError, connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AlterField, SeparateDatabaseAndState
from django.http import HttpResponse
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.errors import constraint_name, constraint_name_in_message, is_database_internal_error
from tests.fixtures import ClinicClient

# (a) Constraint names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "name"),
    [
        # What Citus hands back from a worker: the shard's copy of the constraint.
        (
            'conflicting key value violates exclusion constraint "appointment_no_overlap_102104"',
            "appointment_no_overlap",
        ),
        (
            'duplicate key value violates unique constraint "appointment_idempotency_key_unique_'
            '102233"\nDETAIL:  Key (booked_by_id, idempotency_key)=(3, k) already exists.',
            "appointment_idempotency_key_unique",
        ),
        (
            'new row for relation "authorizations_authorizationline_102180" violates check '
            'constraint "authorization_line_not_overdrawn_102180"',
            "authorization_line_not_overdrawn",
        ),
        (
            'insert or update on table "scheduling_appointment_102104" violates foreign key '
            'constraint "scheduling_appointment_patient_id_fk_102104"',
            "scheduling_appointment_patient_id_fk",
        ),
        # On one PostgreSQL: no suffix to strip.
        (
            'conflicting key value violates exclusion constraint "appointment_no_overlap"',
            "appointment_no_overlap",
        ),
        # A name that ends in digits of its own (fewer than 6) keeps them.
        (
            'violates check constraint "service_code_format_v2_12345"',
            "service_code_format_v2_12345",
        ),
        ('violates unique constraint "coverage_unique_member_2"', "coverage_unique_member_2"),
        # Nothing named.
        ("canceling statement due to lock timeout", ""),
        ('relation "appointment_102104" does not exist', ""),
    ],
)
def test_constraint_name_is_read_from_the_message_without_the_shard_suffix(message, name):
    assert constraint_name_in_message(message) == name


class _NoDiagnostics(Exception):
    """psycopg's error as Citus gives it for a worker's violation: no constraint name."""

    class diag:
        constraint_name = None
        message_primary = (
            'conflicting key value violates exclusion constraint "appointment_no_overlap_102104"'
        )


def test_constraint_name_falls_back_to_the_message_when_the_diagnostics_have_none():
    error = IntegrityError("conflicting key value ...")
    error.__cause__ = _NoDiagnostics()
    assert constraint_name(error) == "appointment_no_overlap"


def test_constraint_name_prefers_the_diagnostics(acme):
    with connection.cursor() as cursor, pytest.raises(IntegrityError) as refused:
        with transaction.atomic():
            cursor.execute(
                "CREATE TEMP TABLE citus_probe"
                " (n int CONSTRAINT citus_probe_small_123 CHECK (n < 2))"
            )
            cursor.execute("INSERT INTO citus_probe VALUES (5)")
    assert refused.value.__cause__.diag.constraint_name == "citus_probe_small_123"
    assert constraint_name(refused.value) == "citus_probe_small_123"


# (b) No tenant migration changes an identity column's type -----------------------------------

# Migrations allowed to do it anyway, each with its reason. Citus refuses `ALTER COLUMN ... TYPE`
# on identity/serial columns of a distributed table; these run only where that cannot happen.
IDENTITY_TYPE_CHANGES_ALLOWED = {
    # simplejwt moved its ids to BigAutoField (0008) and fixed it (0010) in 2021. The app is a
    # tenant app here (each clinic's tokens live in its schema, and in public for operators), but
    # these migrations run only on the template schema and public, which stay local on Citus
    # (settings.CLINIC_TEMPLATE_SCHEMA); clinics are cloned with them already applied.
    ("token_blacklist", "0008_migrate_to_bigautofield"): "historical, template and public only",
    ("token_blacklist", "0010_fix_migrate_to_bigautofield"): "historical, template and public only",
}


def _operations(operations):
    for operation in operations:
        if isinstance(operation, SeparateDatabaseAndState):
            yield from _operations(operation.database_operations)
        else:
            yield operation


def _identity_type_changes() -> set[tuple[str, str]]:
    tenant_labels = set()
    from django.apps import apps

    for app in settings.TENANT_APPS:
        tenant_labels |= {c.label for c in apps.get_app_configs() if c.name == app}
    loader = MigrationLoader(None, ignore_no_migrations=True, load=False)
    loader.load_disk()
    found = set()
    for (label, name), migration in loader.disk_migrations.items():
        if label not in tenant_labels:
            continue
        for operation in _operations(migration.operations):
            if isinstance(operation, AlterField) and (
                isinstance(operation.field, models.AutoField | models.BigAutoField)
                or operation.field.primary_key
                or operation.name == "id"
            ):
                found.add((label, name))
    return found


def test_no_tenant_migration_changes_an_identity_columns_type():
    changes = _identity_type_changes()
    refused = sorted(changes - set(IDENTITY_TYPE_CHANGES_ALLOWED))
    assert not refused, (
        "these tenant migrations change an identity/serial column's type, which Citus refuses in "
        f"a clinic's distributed schema: {refused}"
    )


def test_the_allow_list_names_only_what_the_check_finds():
    """token_blacklist is a tenant app here, so its 0008 is in the check's reach."""
    assert "rest_framework_simplejwt.token_blacklist" in settings.TENANT_APPS
    assert set(IDENTITY_TYPE_CHANGES_ALLOWED) <= _identity_type_changes()


# (d) An internal error of the database (XX000): a 503 problem, never a 500 -----------------------

RAISE_XX000 = (
    "DO $$ BEGIN RAISE EXCEPTION 'could not commit transaction on any active node' "
    "USING ERRCODE = 'XX000'; END $$"
)


def _fail_in_transaction():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute(RAISE_XX000)


# The same error where Citus raises it: at COMMIT (a deferred trigger of a temporary table).
FAIL_AT_COMMIT = [
    "CREATE TEMP TABLE IF NOT EXISTS citus_commit_probe (n int)",
    "CREATE OR REPLACE FUNCTION pg_temp.citus_commit_fail() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'could not commit transaction on any active node' "
    "USING ERRCODE = 'XX000'; END $$",
    "DROP TRIGGER IF EXISTS citus_commit_fail ON citus_commit_probe",
    "CREATE CONSTRAINT TRIGGER citus_commit_fail AFTER INSERT ON citus_commit_probe "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.citus_commit_fail()",
]


class _FailingAtCommitApiView(APIView):
    authentication_classes = ()
    permission_classes = ()

    def post(self, request):
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in FAIL_AT_COMMIT:
                cursor.execute(statement)
            cursor.execute("INSERT INTO citus_commit_probe VALUES (1)")  # accepted until COMMIT
        return Response({})


class _FailingApiView(APIView):
    authentication_classes = ()
    permission_classes = ()

    def post(self, request):
        _fail_in_transaction()
        return Response({})


def _failing_page(request):
    _fail_in_transaction()
    return HttpResponse("unreachable")


urlpatterns = [
    path("api/v1/citus-probe/", _FailingApiView.as_view()),
    path("api/v1/citus-commit-probe/", _FailingAtCommitApiView.as_view()),
    path("citus-probe/", _failing_page),
]
handler500 = "clinic.errors.handler500"


@pytest.mark.urls("tests.test_citus_ready")
def test_an_internal_error_in_an_api_view_is_a_503_problem(acme):
    response = ClinicClient(acme).post("/api/v1/citus-probe/", {}, content_type="application/json")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    assert response.json()["code"] == "database-internal-error"


@pytest.mark.urls("tests.test_citus_ready")
def test_an_internal_error_at_commit_is_a_503_problem(committed_acme):
    client = ClinicClient(committed_acme)
    response = client.post("/api/v1/citus-commit-probe/", {}, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    assert response.json()["code"] == "database-internal-error"


@pytest.mark.urls("tests.test_citus_ready")
def test_an_internal_error_on_a_page_is_a_503_page(acme):
    client = ClinicClient(acme, raise_request_exception=False)
    response = client.get("/citus-probe/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    assert b"nothing was saved" in response.content
    json = client.get("/citus-probe/", HTTP_ACCEPT="application/json")
    assert (json.status_code, json.json()["code"]) == (503, "database-internal-error")


def test_only_sqlstate_xx000_counts_as_the_databases_internal_error():
    class Cause(Exception):
        sqlstate = "XX000"

    internal = InternalError("x")
    internal.__cause__ = Cause()
    other = InternalError("y")
    other.__cause__ = type("Other", (Exception,), {"sqlstate": "25P02"})()
    assert is_database_internal_error(internal)
    assert not is_database_internal_error(other)
    assert not is_database_internal_error(IntegrityError("z"))
