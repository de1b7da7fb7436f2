"""Backups per clinic (issue 21, part 4): the demo clinic exported and imported into a new slug
holds the same rows in every table and the same files; an archive of another migration state
and a slug in use are refused, nothing created."""

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_exists

from accounts.services import user_create
from audit.models import AuditEvent
from clinic.celery import app as celery_app
from demo.billing import billing_seed
from demo.notifications import notifications_seed
from demo.practice import practice_seed
from demo.schedule import schedule_seed
from practice.models import Coverage
from tenants.backups import file_columns
from tenants.models import WORK_KINDS, Clinic, WorkDue
from tenants.selectors import clinics_with_work_due
from tests import clock
from tests.fixtures import _session_worker_stop, in_clinic

CARD = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _rows(schema: str, table: str, file_cols: list[str], rename: tuple[str, str] | None):
    """Every row of the table as text, all columns, ordered (file names moved back when
    `rename` = (new prefix, old prefix))."""
    with connection.cursor() as cursor:
        select = ", ".join(
            f"replace(t.\"{c}\", '{rename[0]}', '{rename[1]}')" if rename else f't."{c}"'
            for c in file_cols
        )
        cursor.execute(
            f'SELECT t::text{", " + select if select else ""} FROM "{schema}"."{table}" t '
            "ORDER BY 1"
        )
        rows = cursor.fetchall()
    if not file_cols:
        return rows
    # The row's text names its files: compare the file columns on their own, mapped.
    return [(row[0].replace(rename[0], rename[1]) if rename else row[0], *row[1:]) for row in rows]


def _tables(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema])
        return [row[0] for row in cursor.fetchall()]


def _sequences(schema: str) -> dict[str, int | None]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s", [schema]
        )
        return dict(cursor.fetchall())


@pytest.fixture
def demo_acme(committed_acme):
    """Acme with the demo's data, staff, an audit event, a card photo and a usage row. No
    worker runs meanwhile (the shared one would send the seeded notifications, writing rows
    into the source after its export); the tasks the seed queued are dropped after."""
    _session_worker_stop()
    with in_clinic(committed_acme):
        practice_seed("acme")
        schedule_seed("acme")
        billing_seed("acme")
        notifications_seed("acme")
        user_create(email="frontdesk@acme.test", password=None, roles=["front_desk"])
        AuditEvent.objects.create(
            occurred_at=clock.run_instant(), schema_name="acme", action="read", path="/backup-test/"
        )
        coverage = Coverage.objects.order_by("pk").first()
        assert coverage is not None
        coverage.card_front.save("card.png", io.BytesIO(CARD), save=True)
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO public.usage_usageday (schema_name, day, kind, subject, "group", count) '
            "VALUES ('acme', '2026-12-01', 'api', 'user:staff', 'appointments', 42)"
        )
    yield committed_acme
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM public.usage_usageday WHERE day = '2026-12-01'")
    coverage.card_front.storage.delete(coverage.card_front.name)  # ours only: the root is shared
    shutil.rmtree(Path(settings.PRIVATE_MEDIA_ROOT) / "acme_copy", ignore_errors=True)
    celery_app.control.purge()


def test_export_then_import_into_a_new_slug_gives_the_same_rows_and_files(demo_acme, tmp_path):
    archive = tmp_path / "acme.tar.gz"
    call_command("clinic_export", "acme", output=str(archive), stdout=io.StringIO())
    out = io.StringIO()
    call_command("clinic_import", str(archive), slug="acme-copy", stdout=out)
    assert "Imported" in out.getvalue()

    copy = Clinic.objects.get(slug="acme-copy")
    assert copy.schema_name == "acme_copy" and copy.name == demo_acme.name
    assert copy.timezone == demo_acme.timezone and copy.published_at == demo_acme.published_at
    assert copy.schema_state == ""  # its roles are the archive's: the next migrate checks them
    tables = _tables("acme")
    assert tables == _tables("acme_copy") and len(tables) > 50
    files_by_table: dict[str, list[str]] = {}
    for table, column in file_columns():
        files_by_table.setdefault(table, []).append(column)
    compared = 0
    for table in tables:
        cols = files_by_table.get(table, [])
        ours = _rows("acme", table, cols, None)
        theirs = _rows("acme_copy", table, cols, ("acme_copy/", "acme/"))
        assert ours == theirs, table
        compared += len(ours)
    assert compared > 500
    assert _sequences("acme") == _sequences("acme_copy")

    # The card photo: under the new clinic's directory, byte for byte.
    with in_clinic(copy):
        card = Coverage.objects.exclude(card_front="").get()
        assert card.card_front.name.startswith("acme_copy/coverage-cards/")
        with card.card_front.open("rb") as photo:
            assert photo.read() == CARD
        # Triggers are back on: the audit trail refuses an update again.
        with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET path = 'x'")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count FROM public.usage_usageday WHERE schema_name = 'acme_copy' "
            "AND day = '2026-12-01'"
        )
        assert cursor.fetchall() == [(42,)]
    # Loaded with the triggers off: every kind of its background work is due for the beat.
    assert copy in clinics_with_work_due("notifications")
    assert set(
        WorkDue.objects.filter(schema_name="acme_copy").values_list("kind", flat=True)
    ) == set(WORK_KINDS)


def _rewrite(archive: Path, dest: Path, change, leave_out: str = "") -> Path:
    with tarfile.open(archive, "r:gz") as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            if member.name == leave_out:
                continue
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return dest


def test_an_archive_of_another_migration_state_is_refused(committed_acme, tmp_path):
    archive = tmp_path / "acme.tar.gz"
    call_command("clinic_export", "acme", output=str(archive), stdout=io.StringIO())
    older = _rewrite(
        archive,
        tmp_path / "older.tar.gz",
        lambda m: m.update(
            migrations=[r for r in m["migrations"] if r != ["billing", "0007_ar_rollup"]]
        ),
    )
    newer = _rewrite(
        archive,
        tmp_path / "newer.tar.gz",
        lambda m: m["migrations"].append(["billing", "9999_future"]),
    )
    with pytest.raises(CommandError, match=r"(?s)migration state.*billing\.0007_ar_rollup"):
        call_command("clinic_import", str(older), slug="acme-old")
    with pytest.raises(CommandError, match=r"unknown to the code: billing\.9999_future"):
        call_command("clinic_import", str(newer), slug="acme-old")
    assert not Clinic.objects.filter(slug="acme-old").exists()
    assert not schema_exists("acme_old")


def test_an_existing_slug_or_a_file_that_is_no_archive_is_refused(committed_acme, tmp_path):
    archive = tmp_path / "acme.tar.gz"
    call_command("clinic_export", "acme", output=str(archive), stdout=io.StringIO())
    before = Clinic.objects.count()
    with pytest.raises(CommandError, match="'globex' exists"):
        call_command("clinic_import", str(archive), slug="globex")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("clinic_import", str(junk), slug="newco")
    with pytest.raises(CommandError, match="No clinic with the slug 'nobody'"):
        call_command("clinic_export", "nobody", output=str(tmp_path / "x.tar.gz"))
    assert Clinic.objects.count() == before


def test_an_import_that_fails_halfway_leaves_no_clinic_and_no_files(demo_acme, tmp_path):
    """The load fails after the clinic was provisioned and its files copied (a table's data
    missing from the archive): the clinic, its schema and its files are gone again."""
    archive = tmp_path / "acme.tar.gz"
    call_command("clinic_export", "acme", output=str(archive), stdout=io.StringIO())
    broken = _rewrite(
        archive, tmp_path / "broken.tar.gz", lambda m: None, "tables/scheduling_appointment.copy"
    )
    with pytest.raises(CommandError, match="scheduling_appointment.copy is missing"):
        call_command("clinic_import", str(broken), slug="acme-copy")
    assert not Clinic.objects.filter(slug="acme-copy").exists()
    assert not schema_exists("acme_copy")
    assert not (Path(settings.PRIVATE_MEDIA_ROOT) / "acme_copy").exists()
