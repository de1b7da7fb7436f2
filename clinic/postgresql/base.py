"""The database backend (settings.DATABASES ENGINE): django-tenants' backend, each clinic a
schema, with a table list that reads the catalogs through their indexes.

Django's table list (the migrate command asks for it several times per run: does
django_migrations exist?) tests `pg_table_is_visible` on every relation of the database, so
it took 0.64 s at 2,000 clinics of some 400 relations each and grows with every clinic. This one
reads the current schema's relations through pg_depend's index on the schema they belong to
(every relation but an index records that dependency), as tenants.clone does: milliseconds,
whatever the number of clinics.
"""

from django.db.backends.postgresql.introspection import TableInfo
from django_tenants.postgresql_backend import base
from django_tenants.postgresql_backend.introspection import (
    DatabaseSchemaIntrospection,
    DatabaseSchemaIntrospectionSearchPathContext,
)


class DatabaseIntrospection(DatabaseSchemaIntrospection):
    def get_table_list(self, cursor):
        """The tables and views of the connection's schema (django-tenants sets the search
        path to that schema alone while it asks)."""
        with DatabaseSchemaIntrospectionSearchPathContext(
            cursor=cursor, connection=self.connection
        ):
            cursor.execute(
                "SELECT c.relname, CASE WHEN c.relispartition THEN 'p' "
                "  WHEN c.relkind IN ('m', 'v') THEN 'v' ELSE 't' END, "
                "  obj_description(c.oid, 'pg_class') "
                "FROM pg_class c WHERE c.oid IN (SELECT d.objid FROM pg_depend d "
                "  WHERE d.classid = 'pg_class'::regclass "
                "  AND d.refclassid = 'pg_namespace'::regclass "
                "  AND d.refobjid = "
                "    (SELECT oid FROM pg_namespace WHERE nspname = current_schema())) "
                "AND c.relkind IN ('f', 'm', 'p', 'r', 'v')"
            )
            return [
                TableInfo(*row) for row in cursor.fetchall() if row[0] not in self.ignored_tables
            ]


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.introspection = DatabaseIntrospection(self)
