from .migrate_schemas import Command  # noqa: F401  (`migrate` is migrate_schemas, as in django-tenants)
