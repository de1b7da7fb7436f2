from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand

from tenants.services import clinics_roles_sync, platform_ensure, template_sync


class Command(MigrateSchemasCommand):
    """django-tenants' migrate_schemas, then the template schema new clinics are cloned from.

    A stale template would hand new clinics an old schema with every migration marked as
    applied, so it is migrated whenever the clinics are. The clinics' role groups are synced
    too, so grants added for new models reach clinics that already exist.
    """

    # The platform row (public schema, bare base domain) is ensured after the public migrations.

    def handle(self, *args, **options):
        super().handle(*args, **options)
        if self.sync_public and not options.get("schema_name"):
            platform_ensure()
        if self.sync_tenant and not options.get("schema_name"):
            template_sync(verbosity=int(options.get("verbosity", 1)) - 1)
        if self.sync_tenant:
            clinics_roles_sync(schema_name=options.get("schema_name"))
