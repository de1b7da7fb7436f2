"""Backups per clinic: one clinic's schema and files out to one archive, and into a new clinic.

`clinic_export` writes a .tar.gz holding `manifest.json` (the tables with their columns and row
counts, the sequences' positions, the schema's migration state, the clinic's public rows: its
Clinic fields, domains, usage rows and plan), one `tables/<table>.copy` per table (PostgreSQL's
`COPY ... TO STDOUT` text format, every stored column named), read in one REPEATABLE READ
snapshot, and `files/...`, the clinic's directory of private media.

`clinic_import` refuses an archive whose migration state is not the code's and a slug in use,
provisions the new clinic as `create_clinic` does (`clinic_create`, a clone of the template),
then in one transaction empties every table of it and loads the archive's rows with `COPY FROM`
with the schema's user triggers disabled (`ALTER TABLE ... DISABLE TRIGGER USER`: transactional,
the table owner's right, no superuser's `session_replication_role`). The rows are a copy of a
consistent clinic: the triggers that derive rows (billing's charge balances and A/R rollups,
loaded as data) must not derive them twice, and the guards (append-only audit trail and ledger,
frozen claim lines, waitlist holds) must not refuse what the clinic already accepted. Audit
events are inserted as they were (their `schema_name` still names the clinic they happened in),
never updated nor deleted. Foreign keys stay on: Django's are deferrable, checked once every row
is in (`SET CONSTRAINTS ALL IMMEDIATE`), then the triggers are enabled again. Sequences take the
exported positions; files are copied under the new schema's directory and the file fields'
names moved with them. A failure drops the new clinic and its files.
"""

import hashlib
import io
import json
import logging
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone as django_timezone
from django_tenants.utils import schema_context, schema_exists

from .models import WORK_KINDS, Clinic, Domain, WorkDue
from .selectors import migration_nodes

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # due now, whatever the clock says
# The public rows of a clinic (usage metering's): keyed by schema name, no foreign key.
PUBLIC_TABLES = ("usage_usageday", "usage_clinicplan")
CLINIC_FIELDS = (
    "name",
    "timezone",
    "is_active",
    "suspended_reason",
    "suspended_at",
    "published_at",
    "created_at",
)


class BackupError(Exception):
    """An archive that cannot be imported, or a clinic that cannot be exported (said why)."""


@dataclass(frozen=True)
class ImportResult:
    clinic: Clinic
    tables: int
    rows: int
    files: int


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(cursor, schema: str) -> list[tuple[str, list[str]]]:
    """The schema's ordinary tables, each with its stored columns (generated ones left out)."""
    cursor.execute(
        "SELECT c.relname, array_agg(a.attname ORDER BY a.attnum) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attgenerated = '' "
        "GROUP BY c.relname ORDER BY c.relname",
        [schema],
    )
    return [(name, list(columns)) for name, columns in cursor.fetchall()]


def _sequences(cursor, schema: str) -> dict[str, int | None]:
    """Each sequence's position: its last value, None when never used."""
    cursor.execute(
        "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s "
        "ORDER BY sequencename",
        [schema],
    )
    return dict(cursor.fetchall())


def file_columns() -> list[tuple[str, str]]:
    """(table, column) of every file field of the clinics' models: names under
    `<schema>/...` in their storage."""
    found: list[tuple[str, str]] = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.FileField):
                found.append((model._meta.db_table, str(field.column)))
    return sorted(found)


def _public_rows(cursor, schema: str) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in PUBLIC_TABLES:
        cursor.execute(
            f"SELECT * FROM public.{_q(table)} WHERE schema_name = %s ORDER BY id", [schema]
        )
        names = [column.name for column in cursor.description]
        rows[table] = [
            {name: value for name, value in zip(names, row, strict=True) if name != "id"}
            for row in cursor.fetchall()
        ]
    return rows


def _media_dir(schema: str) -> Path:
    """The clinic's directory of private media (`card_upload_to` and any like it)."""
    return Path(settings.PRIVATE_MEDIA_ROOT) / schema


def clinic_export(*, slug: str, output: Path) -> dict[str, Any]:
    """Write clinic `slug`'s archive to `output`; returns its manifest.

    One REPEATABLE READ transaction: every table is read at the same instant."""
    with schema_context("public"):
        clinic = Clinic.objects.exclude(schema_name="public").filter(slug=slug).first()
        if clinic is None:
            raise BackupError(f"No clinic with the slug '{slug}'.")
        domains = [
            {"domain": d.domain, "is_primary": d.is_primary}
            for d in Domain.objects.filter(tenant=clinic)
        ]
    schema = clinic.schema_name
    output.parent.mkdir(parents=True, exist_ok=True)
    outer = connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # the search path is set now, not in the transaction below
    with tempfile.TemporaryDirectory() as scratch, transaction.atomic():
        with connection.cursor() as cursor:
            if not outer:  # (a caller's transaction has its own snapshot)
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            tables: list[dict[str, Any]] = []
            for name, columns in _tables(cursor, schema):
                path = Path(scratch) / f"{name}.copy"
                column_list = ", ".join(_q(column) for column in columns)
                rows = 0
                raw = cursor.cursor  # psycopg's own, for COPY
                with path.open("wb") as out:
                    with raw.copy(
                        f"COPY {_q(schema)}.{_q(name)} ({column_list}) TO STDOUT"
                    ) as copy:
                        for chunk in copy:
                            out.write(chunk)
                            rows += bytes(chunk).count(b"\n")
                tables.append({"name": name, "columns": columns, "rows": rows})
            sequences = _sequences(cursor, schema)
            cursor.execute(f"SELECT app, name FROM {_q(schema)}.django_migrations ORDER BY id")
            migrations = [list(row) for row in cursor.fetchall()]
            public = _public_rows(cursor, schema)
        files: list[dict[str, Any]] = []
        media = _media_dir(schema)
        if media.is_dir():
            for path in sorted(p for p in media.rglob("*") if p.is_file()):
                files.append(
                    {
                        "name": path.relative_to(media).as_posix(),
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "size": path.stat().st_size,
                    }
                )
        manifest = {
            "format": FORMAT,
            "exported_at": django_timezone.now().isoformat(),
            "slug": clinic.slug,
            "schema": schema,
            "clinic": {
                field: (
                    value.isoformat()
                    if hasattr(value := getattr(clinic, field), "isoformat")
                    else value
                )
                for field in CLINIC_FIELDS
            },
            "domains": domains,
            "migrations": migrations,
            "tables": tables,
            "sequences": sequences,
            "public": public,
            "file_columns": file_columns(),
            "files": files,
        }
        with tarfile.open(output, "w:gz") as archive:
            data = json.dumps(manifest, indent=1, default=str).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            for table in tables:
                archive.add(Path(scratch) / f"{table['name']}.copy", f"tables/{table['name']}.copy")
            for entry in files:
                archive.add(media / entry["name"], f"files/{entry['name']}")
    logger.info("clinic %s exported to %s", slug, output)
    return manifest


def archive_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = archive.extractfile(MANIFEST)
        assert member is not None
        manifest = json.loads(member.read())
    except (KeyError, AssertionError, ValueError) as exc:
        raise BackupError("Not a clinic archive: no readable manifest.json.") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Archive format {manifest.get('format')!r}; this code reads {FORMAT}.")
    return manifest


def migration_difference(recorded: list[list[str]]) -> tuple[set, set]:
    """(migrations of the code the archive lacks, migrations the archive has the code lacks)."""
    theirs = {tuple(row) for row in recorded}
    ours = set(migration_nodes())
    return ours - theirs, theirs - ours


def _refuse_migrations(manifest: dict[str, Any]) -> None:
    missing, extra = migration_difference(manifest["migrations"])
    if not (missing or extra):
        return
    lines = ["The archive's migration state differs from the code's:"]
    if missing:
        names = ", ".join(f"{app}.{name}" for app, name in sorted(missing)[:10])
        lines.append(f"  {len(missing)} migration(s) of the code not in the archive: {names}")
    if extra:
        names = ", ".join(f"{app}.{name}" for app, name in sorted(extra)[:10])
        lines.append(f"  {len(extra)} migration(s) in the archive unknown to the code: {names}")
    lines.append(
        "Import it with the code it was exported from (then upgrade with migrate_schemas)."
    )
    raise BackupError("\n".join(lines))


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"Archive member {name!r} refused: not a relative path.")
    return path


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise BackupError(f"Archive member {name} is missing or not a file.")
    return member


def _copy_files(archive: tarfile.TarFile, manifest: dict[str, Any], schema: str) -> int:
    media = _media_dir(schema)
    for entry in manifest["files"]:
        relative = _member_path(entry["name"])
        data = _member(archive, f"files/{relative.as_posix()}").read()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BackupError(f"Archive member files/{relative} does not match its checksum.")
        target = media / str(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return len(manifest["files"])


def _load_tables(
    cursor, archive: tarfile.TarFile, manifest: dict[str, Any], schema: str
) -> tuple[int, int]:
    """Empty the new clinic's tables, load the archive's, triggers off (one transaction)."""
    here = dict(_tables(cursor, schema))
    theirs = {table["name"]: table for table in manifest["tables"]}
    if set(here) != set(theirs):
        raise BackupError(
            "The archive's tables differ from a new clinic's: "
            f"missing {sorted(set(here) - set(theirs))}, unknown {sorted(set(theirs) - set(here))}."
        )
    for name, columns in here.items():
        if set(columns) != set(theirs[name]["columns"]):
            raise BackupError(f"The archive's columns of {name} differ from a new clinic's.")
    names = [f"{_q(schema)}.{_q(name)}" for name in sorted(here)]
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    for name in names:
        cursor.execute(f"ALTER TABLE {name} DISABLE TRIGGER USER")
    cursor.execute(f"TRUNCATE {', '.join(names)}")
    rows = 0
    raw = cursor.cursor  # psycopg's own, for COPY
    for table in manifest["tables"]:
        member = _member(archive, f"tables/{_member_path(table['name']).as_posix()}.copy")
        column_list = ", ".join(_q(column) for column in table["columns"])
        with raw.copy(f"COPY {_q(schema)}.{_q(table['name'])} ({column_list}) FROM STDIN") as copy:
            while chunk := member.read(1 << 20):
                copy.write(chunk)
        rows += table["rows"]
    old_prefix = f"{manifest['schema']}/"
    for table, column in manifest["file_columns"]:
        if table in here and column in here[table]:
            cursor.execute(
                f"UPDATE {_q(schema)}.{_q(table)} SET {_q(column)} = %s || "
                f"substr({_q(column)}, %s) WHERE starts_with({_q(column)}, %s)",
                [f"{schema}/", len(old_prefix) + 1, old_prefix],
            )
    for sequence, position in manifest["sequences"].items():
        qualified = f"{_q(schema)}.{_q(sequence)}"
        if position is None:
            cursor.execute("SELECT setval(%s::regclass, 1, false)", [qualified])
        else:
            cursor.execute("SELECT setval(%s::regclass, %s, true)", [qualified, position])
    # The foreign keys checked now (every row loaded), then the triggers back on.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for name in names:
        cursor.execute(f"ALTER TABLE {name} ENABLE TRIGGER USER")
    return len(names), rows


def _load_public(cursor, manifest: dict[str, Any], clinic: Clinic) -> None:
    fields = manifest["clinic"]
    Clinic.objects.filter(pk=clinic.pk).update(
        is_active=fields["is_active"],
        suspended_reason=fields["suspended_reason"],
        suspended_at=fields["suspended_at"],
        published_at=fields["published_at"],
        # Its role groups are now the archive's: the next migrate_schemas checks them.
        schema_state="",
    )
    for table, rows in manifest["public"].items():
        for row in rows:
            row = {**row, "schema_name": clinic.schema_name}
            columns = ", ".join(_q(column) for column in row)
            marks = ", ".join(["%s"] * len(row))
            cursor.execute(
                f"INSERT INTO public.{_q(table)} ({columns}) VALUES ({marks})", list(row.values())
            )
    # The rows were loaded with the triggers off, so none marked the clinic for the beat: every
    # kind of its background work is due, and the first sweeps settle it (models.WorkDue).
    WorkDue.objects.bulk_create(
        [WorkDue(schema_name=clinic.schema_name, kind=kind, due_at=EPOCH) for kind in WORK_KINDS],
        ignore_conflicts=True,
    )


def clinic_import(*, archive_path: Path, slug: str, name: str | None = None) -> ImportResult:
    """A new clinic `slug` holding the archive's rows and files (see the module's doc)."""
    from .selectors import clinic_cache_clear
    from .services import clinic_create

    try:
        archive = tarfile.open(archive_path, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"Cannot read {archive_path}: {exc}") from exc
    with archive:
        manifest = archive_manifest(archive)
        _refuse_migrations(manifest)
        with schema_context("public"):
            if Clinic.objects.filter(slug=slug).exists() or schema_exists(slug.replace("-", "_")):
                raise BackupError(f"A clinic with the slug '{slug}' exists: choose a new slug.")
        fields = manifest["clinic"]
        try:
            clinic = clinic_create(
                slug=slug,
                name=name or fields["name"],
                timezone=fields["timezone"],
                published=False,
            )
        except ValidationError as exc:
            message = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise BackupError(message) from exc
        schema = clinic.schema_name
        media = _media_dir(schema)
        try:
            files = _copy_files(archive, manifest, schema)
            with schema_context("public"), transaction.atomic(), connection.cursor() as cursor:
                tables, rows = _load_tables(cursor, archive, manifest, schema)
                _load_public(cursor, manifest, clinic)
        except BaseException:
            shutil.rmtree(media, ignore_errors=True)
            with schema_context("public"):
                clinic.delete(force_drop=True)
            raise
    clinic_cache_clear()
    with schema_context("public"):
        clinic.refresh_from_db()
    logger.info("clinic %s imported from %s into %s", manifest["slug"], archive_path, slug)
    return ImportResult(clinic=clinic, tables=tables, rows=rows, files=files)
