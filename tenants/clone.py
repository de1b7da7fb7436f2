"""Copy the template schema into a new clinic's schema, at a cost that does not grow with the
number of clinics.

django-tenants' `clone_schema()` SQL function reads `information_schema.columns` and
`pg_indexes` once per table; those views scan the catalog rows of *every* schema, so cloning
took 0.2 s with 2 clinics, 2.2 s with 220 and 2.6–3.1 s with 1,000 (bench/README.md, tenant
scale). Here every catalog query is keyed by the template's oids or found through pg_depend's
index (indexed lookups), so its cost does not grow with the clinics. The DDL comes
from PostgreSQL's own deparsers (`CREATE TABLE ... (LIKE ...)`, `pg_get_constraintdef`,
`pg_get_indexdef`), so names, constraints, indexes, identity positions and rows come out as in
the template.

What it copies: ordinary tables (columns, defaults, identity, generated columns, NOT NULL and
CHECK constraints, comments, storage), primary keys, unique and exclusion constraints, other
indexes, foreign keys, rows, identity sequence positions, table comments, triggers calling a
function outside the template (the audit trail's, in public). Anything else in the template
(views, functions, other triggers, types, plain sequences, partitioned or inherited tables,
policies, rules, grants) raises `CloneUnsupported` before anything is written, and the caller
falls back to django-tenants' complete but slow function.
"""

from __future__ import annotations

from django.db import connection, transaction
from psycopg import sql


class CloneUnsupported(Exception):
    """The template holds an object this clone does not copy."""


def _fetch(cursor, query, params=None):
    cursor.execute(query, params)
    return cursor.fetchall()


# The objects of a schema found through their dependency on it (pg_depend's index on the
# referenced object), not by pg_class.relnamespace or pg_type.typnamespace, which no index leads
# with: a scan of pg_class cost 150 ms at 560 clinics of 83 tables and grows with every clinic.
# Every relation but an index and every standalone type records a dependency on its schema
# (that is how DROP SCHEMA ... CASCADE finds them); a table's row type depends on its table.
_IN_SCHEMA = (
    "SELECT d.objid FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
    "AND d.refclassid = 'pg_namespace'::regclass AND d.refobjid = %s"
)


# The rows of a catalog for each of the tables (an oid[] parameter), looked up table by table
# through the catalog's index: `<catalog> WHERE <column> = ANY(oids)` was planned as a scan of
# the whole catalog (pg_trigger: 90 ms at 640 clinics), its statistics counting few tables.
# Followed by the lateral subquery's select list, FROM and `WHERE <column> = r.relid ... OFFSET
# 0) x`: OFFSET 0 keeps the subquery from being flattened into a hash join (a scan again).
_EACH_TABLE = "unnest(%s::oid[]) AS r(relid) CROSS JOIN LATERAL (SELECT"


def _relations(cursor, namespace: int) -> list[tuple]:
    """Every relation of the schema but indexes, with what decides whether it can be copied."""
    return _fetch(
        cursor,
        "SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.reloptions, "
        "  obj_description(c.oid, 'pg_class'), "
        "  c.relispartition OR c.relrowsecurity OR c.relacl IS NOT NULL "
        "  OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid) "
        "  OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = c.oid), "
        "  c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_depend d "
        "    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i') "
        f"FROM pg_class c WHERE c.oid IN ({_IN_SCHEMA.format(catalog='pg_class')}) "
        "AND c.relkind NOT IN ('i', 'I') ORDER BY c.relname",
        [namespace],
    )


def _unsupported(cursor, namespace: int, relations: list[tuple]) -> list[str]:
    found = []
    for _, name, kind, _, _, _, odd, plain_sequence in relations:
        if kind not in ("r", "S"):
            found.append(f"{name} (relkind {kind})")
        elif odd:
            found.append(f"{name} (partition, inheritance, row security or grants)")
        elif plain_sequence:
            found.append(f"sequence {name} (not an identity column's)")
    rows = _fetch(cursor, "SELECT proname FROM pg_proc WHERE pronamespace = %s", [namespace])
    found += [f"function {name}" for (name,) in rows]
    # Row types of tables and their array types come with the tables.
    rows = _fetch(
        cursor,
        f"SELECT typname FROM pg_type t WHERE t.oid IN ({_IN_SCHEMA.format(catalog='pg_type')}) "
        "AND NOT (typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c "
        "  WHERE c.oid = t.typrelid AND c.relkind <> 'c')) "
        "AND NOT (typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_type e "
        "  JOIN pg_class c ON c.oid = e.typrelid WHERE e.oid = t.typelem AND c.relkind <> 'c'))",
        [namespace],
    )
    found += [f"type {name}" for (name,) in rows]
    tables = [r[0] for r in relations if r[2] == "r"]
    if tables:
        rows = _fetch(
            cursor,
            # A trigger calling a function outside the template (in public) is copied.
            f"SELECT x.tgname FROM {_EACH_TABLE} t.tgname FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = r.relid AND NOT t.tgisinternal AND p.pronamespace = %s OFFSET 0) x "
            "UNION ALL SELECT polname FROM pg_policy WHERE polrelid = ANY(%s) "
            "UNION ALL SELECT rulename FROM pg_rewrite WHERE ev_class = ANY(%s) "
            "UNION ALL SELECT stxname FROM pg_statistic_ext WHERE stxrelid = ANY(%s)",
            [tables, namespace, tables, tables, tables],
        )
        found += [f"trigger, policy, rule or statistics {name}" for (name,) in rows]
    return found


def _by_table(rows: list[tuple]) -> dict[int, list[tuple]]:
    """Catalog rows whose first column is a table's oid, grouped by it (order kept)."""
    grouped: dict[int, list[tuple]] = {}
    for oid, *rest in rows:
        grouped.setdefault(oid, []).append(tuple(rest))
    return grouped


def schema_clone(*, source: str, dest: str) -> None:
    """Create schema `dest` as a copy of `source` (structure and rows), in one transaction.

    The template is read in a fixed handful of catalog queries (each over all its tables) and
    the copy is written as one batch of statements, one round trip: a table's primary key,
    unique and exclusion constraints are part of its CREATE TABLE and its foreign keys one
    ALTER TABLE, so each table is opened a few times, not once per constraint. (One statement
    per object cost ~1,300 round trips per clinic once the template had 83 tables.)

    Raises CloneUnsupported (nothing written) when `source` holds objects this does not copy.
    The connection's search_path is restored afterwards.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # The catalogs' statistics lag behind the clinics (their tables are analysed seldom):
        # the estimates of these small reads grow past jit_above_cost, and compiling them cost
        # 30-250 ms each at 640 clinics.
        cursor.execute("SET LOCAL jit = off")
        namespace = _fetch(cursor, "SELECT oid FROM pg_namespace WHERE nspname = %s", [source])
        if not namespace:
            raise CloneUnsupported(f"schema {source} does not exist")
        namespace = namespace[0][0]
        relations = _relations(cursor, namespace)
        problems = _unsupported(cursor, namespace, relations)
        if problems:
            raise CloneUnsupported(f"{source} holds {', '.join(problems[:10])}")

        tables = [r[:2] + r[3:6] for r in relations if r[2] == "r"]
        oids = [oid for oid, *_ in tables]
        original_path = _fetch(cursor, "SHOW search_path")[0][0]
        src, dst = sql.Identifier(source), sql.Identifier(dest)
        try:
            # Deparse with the template first on the path, so that its own tables come out
            # unqualified, then run the DDL with the new schema first: they bind to its tables.
            cursor.execute(sql.SQL("SET search_path = {}, public").format(src))
            constraints = _by_table(
                _fetch(
                    cursor,
                    "SELECT r.relid, conname, contype, pg_get_constraintdef(x.oid, true) "
                    f"FROM {_EACH_TABLE} oid, conname, contype FROM pg_constraint "
                    "WHERE conrelid = r.relid AND contype IN ('p', 'u', 'x', 'f') OFFSET 0) x "
                    "ORDER BY r.relid, contype = 'f', contype <> 'p', conname",
                    [oids],
                )
            )
            indexes = _by_table(
                _fetch(
                    cursor,
                    "SELECT i.indrelid, pg_get_indexdef(i.indexrelid, 0, true) FROM pg_index i "
                    "WHERE i.indrelid = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                    "WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid "
                    "AND c.contype IN ('p', 'u', 'x')) "
                    "ORDER BY i.indrelid, i.indexrelid",
                    [oids],
                )
            )
            triggers = _fetch(
                cursor,
                f"SELECT pg_get_triggerdef(x.oid, true) FROM {_EACH_TABLE} oid, tgname "
                "FROM pg_trigger WHERE tgrelid = r.relid AND NOT tgisinternal OFFSET 0) x "
                "ORDER BY r.relid, tgname",
                [oids],
            )
            columns = _by_table(
                _fetch(
                    cursor,
                    "SELECT attrelid, attname, attgenerated <> '' FROM pg_attribute "
                    "WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped "
                    "ORDER BY attrelid, attnum",
                    [oids],
                )
            )
            # The tables holding rows (most of the template's are empty) ...
            filled = set()
            for at in range(0, len(tables), 200):
                chunk = tables[at : at + 200]
                filled |= {
                    row[0]
                    for row in _fetch(
                        cursor,
                        sql.SQL(" UNION ALL ")
                        .join(
                            sql.SQL("(SELECT {}::oid FROM {}.{} LIMIT 1)").format(
                                sql.Literal(oid), src, sql.Identifier(name)
                            )
                            for oid, name, *_ in chunk
                        )
                        .as_string(cursor.cursor),
                    )
                }
            # ... and the identity sequences that have handed out a value (NULL: never called).
            positions = _fetch(
                cursor,
                "SELECT c.relname, a.attname, pg_sequence_last_value(pg_get_serial_sequence("
                "  format('%%I.%%I', %s::text, c.relname), a.attname)::regclass) "
                "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE c.oid = ANY(%s) AND a.attidentity <> '' AND NOT a.attisdropped "
                "ORDER BY c.relname, a.attnum",
                [source, oids],
            )

            ddl: list[sql.Composable] = [
                sql.SQL("CREATE SCHEMA {}").format(dst),
                sql.SQL("SET search_path = {}, public").format(dst),
            ]
            foreign_keys: dict[str, list[sql.Composable]] = {}
            for oid, name, persistence, options, comment in tables:
                table = sql.Identifier(name)
                elements = [
                    sql.SQL(
                        "LIKE {src}.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                        "INCLUDING IDENTITY INCLUDING GENERATED INCLUDING COMMENTS "
                        "INCLUDING STORAGE INCLUDING COMPRESSION"
                    ).format(src=src, table=table)
                ]
                for conname, contype, definition in constraints.get(oid, []):
                    clause = sql.SQL("CONSTRAINT {} ").format(sql.Identifier(conname))
                    clause += sql.SQL(definition)
                    if contype == "f":
                        foreign_keys.setdefault(name, []).append(sql.SQL("ADD ") + clause)
                    else:
                        elements.append(clause)
                ddl.append(
                    sql.SQL("CREATE {unlogged}TABLE {dst}.{table} ({elements}){options}").format(
                        unlogged=sql.SQL("UNLOGGED " if persistence == "u" else ""),
                        dst=dst,
                        table=table,
                        elements=sql.SQL(", ").join(elements),
                        options=sql.SQL(f" WITH ({', '.join(options)})" if options else ""),
                    )
                )
                if comment:
                    ddl.append(
                        sql.SQL("COMMENT ON TABLE {}.{} IS {}").format(
                            dst, table, sql.Literal(comment)
                        )
                    )
                ddl += [sql.SQL(definition) for (definition,) in indexes.get(oid, [])]
                stored = [
                    sql.Identifier(col) for col, generated in columns.get(oid, []) if not generated
                ]
                if oid in filled and stored:
                    copied = sql.SQL(", ").join(stored)
                    ddl.append(
                        sql.SQL(
                            "INSERT INTO {dst}.{table} ({cols}) OVERRIDING SYSTEM VALUE "
                            "SELECT {cols} FROM {src}.{table}"
                        ).format(dst=dst, src=src, table=table, cols=copied)
                    )
            for name, column, last_value in positions:
                if last_value is not None:
                    ddl.append(
                        sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), {}, true)").format(
                            sql.Literal(sql.Identifier(dest, name).as_string(cursor.cursor)),
                            sql.Literal(column),
                            sql.Literal(last_value),
                        )
                    )
            ddl += [
                sql.SQL("ALTER TABLE {}.{} ").format(dst, sql.Identifier(name))
                + sql.SQL(", ").join(clauses)
                for name, clauses in foreign_keys.items()
            ]
            ddl += [sql.SQL(definition) for (definition,) in triggers]
            cursor.execute(";\n".join(part.as_string(cursor.cursor) for part in ddl))
        finally:
            cursor.execute(f"SET search_path = {original_path}")


# --- Checking what provisioning made ---------------------------------------------------------


def citus_installed() -> bool:
    """Whether this database runs Citus (schema-based sharding: each clinic a distributed
    schema, docs/architecture.md "Growing past one machine")."""
    with connection.cursor() as cursor:
        return bool(_fetch(cursor, "SELECT 1 FROM pg_extension WHERE extname = 'citus'"))


_TABLES = (
    "SELECT c.relname FROM pg_class c WHERE c.oid IN ("
    + _IN_SCHEMA.format(catalog="pg_class").replace(
        "%s", "(SELECT oid FROM pg_namespace WHERE nspname = %s)"
    )
    + ") AND c.relkind IN ('r', 'p')"
)
# On Citus, a table of a distributed schema has its shard placed on a worker (group 0 is the
# coordinator); one left on the coordinator is not part of the sharding.
_OFF_THE_WORKERS = _TABLES + (
    " AND NOT EXISTS (SELECT 1 FROM pg_dist_shard s JOIN pg_dist_placement p "
    "ON p.shardid = s.shardid WHERE s.logicalrelid = c.oid AND p.groupid <> 0) ORDER BY 1"
)


def tables_placed(schema: str) -> list[str]:
    """A provisioning check (settings.CLINIC_PROVISION_CHECKS): what is wrong with a new
    clinic's schema, as sentences ([] when nothing). Every table of the template is in it,
    and on Citus every one of its tables is placed on a worker."""
    from django.conf import settings

    problems = []
    with connection.cursor() as cursor:
        template = {row[0] for row in _fetch(cursor, _TABLES, [settings.TENANT_BASE_SCHEMA])}
        made = {row[0] for row in _fetch(cursor, _TABLES, [schema])}
        if missing := sorted(template - made):
            problems.append(f"{schema} lacks the template's tables {', '.join(missing[:10])}")
        if citus_installed():
            if stayed := [row[0] for row in _fetch(cursor, _OFF_THE_WORKERS, [schema])]:
                problems.append(
                    f"{schema}'s tables {', '.join(stayed[:10])} are not on a Citus worker"
                )
    return problems
