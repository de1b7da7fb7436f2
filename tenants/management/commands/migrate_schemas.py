from django.db import DatabaseError, transaction
from django_tenants.management.commands import SyncCommon
from django_tenants.management.commands.migrate_schemas import (
    GET_EXECUTOR_FUNCTION,
    MigrateSchemasCommand,
)
from django_tenants.utils import get_public_schema_name

from tenants.models import Clinic
from tenants.selectors import schemas_missing, schemas_with_pending_migrations
from tenants.services import (
    clinics_roles_sync,
    platform_ensure,
    schema_pool_refill,
    schema_state,
    template_sync,
)

# Options under which every schema goes through Django's migrate command, as in django-tenants.
FULL_PASS_OPTIONS = (
    "app_label",
    "migration_name",
    "fake",
    "fake_initial",
    "plan",
    "check_unapplied",
    "prune",
    "run_syncdb",
    "schema_name",
    "all_schemas",
)


class Command(MigrateSchemasCommand):
    """django-tenants' migrate_schemas, then the template schema new clinics are cloned from.

    A stale template would hand new clinics an old schema with every migration marked as
    applied, so it is migrated whenever the clinics are. The clinics' role groups are synced
    too, so grants added for new models reach clinics that already exist.

    A no-op upgrade visits no clinic. Each clinic records the state migrate_schemas last found
    or brought its schema to (`Clinic.schema_state`: a digest of the code's migrations and the
    roles' grants); only the clinics recorded at another state are checked, in one query per
    200 schemas (migrations recorded, role groups' fingerprint), and only those behind are
    migrated or synced. Django's migrate command costs ~0.1 s per schema even with nothing to do,
    and checking every clinic cost 4 ms per schema at 2,000 clinics.

    Like Django's own django_migrations, the record is trusted: a schema changed by hand behind
    it is found by `--all-schemas`, which runs Django's migrate in every clinic as django-tenants
    does and then records them all. Any option that targets particular migrations or schemas
    runs that way too, and clears the record of the schemas it touched (a migration rolled back
    leaves a schema behind), so the next plain run checks them again.
    """

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--all-schemas",
            action="store_true",
            help="Run Django's migrate in every clinic, even those already up to date.",
        )

    def handle(self, *args, **options):
        state = schema_state()
        targeted = [option for option in FULL_PASS_OPTIONS if options.get(option)]
        clinics = Clinic.objects.exclude(schema_name=get_public_schema_name())
        if options.get("schema_name"):
            clinics = clinics.filter(schema_name=options["schema_name"])
        if targeted:
            try:
                super().handle(*args, **options)
            finally:  # done or not, the next plain run checks them again
                _unrecord(clinics)
            recordable = targeted == ["all_schemas"]
        else:
            checked = self._migrate_pending_only(state, *args, **options)
            clinics = clinics.filter(schema_name__in=checked)
            recordable = True
        # The platform row (public schema, bare base domain) after the public migrations.
        if self.sync_public and not options.get("schema_name"):
            platform_ensure()
        if self.sync_tenant and not options.get("schema_name"):
            template_sync(verbosity=int(options.get("verbosity", 1)) - 1)
            schema_pool_refill()  # copies of the template before this migration are dropped
        if self.sync_tenant:
            schemas = list(clinics.values_list("schema_name", flat=True))
            if schemas:
                clinics_roles_sync(schemas=schemas)
                if recordable:
                    clinics.exclude(schema_state=state).update(schema_state=state)

    def _migrate_pending_only(self, state: str, *args, **options) -> list[str]:
        """Migrate the public schema, and the clinics not recorded at `state` whose
        django_migrations lacks a migration of the code. Returns the clinics checked."""
        SyncCommon.handle(self, *args, **options)
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        public = get_public_schema_name()
        if self.sync_public:
            executor.run_migrations(tenants=[public])
        if not self.sync_tenant:
            return []
        clinics = Clinic.objects.exclude(schema_name=public)
        unchecked = list(
            clinics.exclude(schema_state=state)
            .order_by("schema_name")
            .values_list("schema_name", flat=True)
        )
        pending = schemas_with_pending_migrations(unchecked)
        # A clinic's row without its schema: a provisioning killed between the two (one that
        # failed cleans up after itself). Nothing to migrate; it must not stop the others.
        if missing := schemas_missing(pending):
            self.stderr.write(
                f"{len(missing)} clinics have no schema (an interrupted provisioning; delete "
                f"them and provision again): {', '.join(missing[:20])}"
            )
            pending = [schema for schema in pending if schema not in missing]
        if int(options.get("verbosity", 1)) >= 1:
            self.stdout.write(
                f"{clinics.count() - len(unchecked)} clinics recorded up to date, "
                f"{len(unchecked) - len(pending) - len(missing)} found up to date, "
                f"{len(pending)} to migrate"
            )
        if pending:
            executor.run_migrations(tenants=pending)
        return [schema for schema in unchecked if schema not in missing]


def _unrecord(clinics) -> None:
    """Clear the recorded state of `clinics`: nothing to clear before the first migration of
    the public schema (no table yet) or of this field (no column yet)."""
    try:
        with transaction.atomic():
            clinics.update(schema_state="")
    except DatabaseError:
        pass
