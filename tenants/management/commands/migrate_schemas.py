from django_tenants.management.commands import SyncCommon
from django_tenants.management.commands.migrate_schemas import (
    GET_EXECUTOR_FUNCTION,
    MigrateSchemasCommand,
)
from django_tenants.utils import get_public_schema_name

from tenants.models import Clinic
from tenants.selectors import schemas_with_pending_migrations
from tenants.services import (
    clinics_roles_sync,
    platform_ensure,
    schema_pool_refill,
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

    Clinics whose django_migrations already records every migration of the code are skipped:
    Django's migrate command costs ~0.1 s per schema even with nothing to do, and more as
    clinics are added (its table introspection scans every schema's catalog rows), so a no-op
    upgrade over 1,000 clinics took minutes; the check is two indexed queries per clinic.
    `--all-schemas` (or any option that targets particular migrations or schemas) runs the
    command in every schema as django-tenants does.
    """

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--all-schemas",
            action="store_true",
            help="Run Django's migrate in every clinic, even those already up to date.",
        )

    def handle(self, *args, **options):
        if any(options.get(option) for option in FULL_PASS_OPTIONS):
            super().handle(*args, **options)
        else:
            self._migrate_pending_only(*args, **options)
        # The platform row (public schema, bare base domain) after the public migrations.
        if self.sync_public and not options.get("schema_name"):
            platform_ensure()
        if self.sync_tenant and not options.get("schema_name"):
            template_sync(verbosity=int(options.get("verbosity", 1)) - 1)
            schema_pool_refill()  # copies of the template before this migration are dropped
        if self.sync_tenant:
            clinics_roles_sync(schema_name=options.get("schema_name"))

    def _migrate_pending_only(self, *args, **options):
        SyncCommon.handle(self, *args, **options)
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        public = get_public_schema_name()
        if self.sync_public:
            executor.run_migrations(tenants=[public])
        if self.sync_tenant:
            schemas = list(
                Clinic.objects.exclude(schema_name=public)
                .order_by("schema_name")
                .values_list("schema_name", flat=True)
            )
            pending = schemas_with_pending_migrations(schemas)
            if int(options.get("verbosity", 1)) >= 1:
                self.stdout.write(
                    f"{len(schemas) - len(pending)} clinics up to date, {len(pending)} to migrate"
                )
            if pending:
                executor.run_migrations(tenants=pending)
