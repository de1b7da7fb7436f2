"""Reads of a clinic's master data, shared by the API, the admin and the patient pages.

Every selector returns a lazy queryset whose related rows come in a fixed number of queries
(`select_related` / `prefetch_related`), whatever the number of rows: callers paginate and
serialize without N+1 queries.
"""

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import (
    JSONField,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL

from accounts.models import User
from clinic.permissions import ALL, OWN, SELF, permission_scopes

from .models import (
    ClinicSettings,
    Coverage,
    Location,
    Patient,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)

# Practitioners ------------------------------------------------------------------------------


# A practitioner's specialties and locations as JSON arrays, correlated with the outer row.
# Plain SQL: fixed text, nothing to build per request (the ORM spent longer assembling these
# subqueries than PostgreSQL spends running them). Tables resolve through the clinic's
# search_path, like every other query of the request.
_SPECIALTY_LIST = """
    SELECT COALESCE(jsonb_agg(jsonb_build_object('id', s.id, 'slug', s.slug, 'name', s.name)
                              ORDER BY s.name, s.id), '[]'::jsonb)
      FROM practice_practitioner_specialties ps
      JOIN practice_specialty s ON s.id = ps.specialty_id
     WHERE ps.practitioner_id = practice_practitioner.id {active}
"""
_LOCATION_LIST = """
    SELECT COALESCE(jsonb_agg(jsonb_build_object('id', l.id, 'name', l.name,
                                                 'timezone', l.timezone)
                              ORDER BY l.name, l.id), '[]'::jsonb)
      FROM practice_practitioner_locations pl
      JOIN practice_location l ON l.id = pl.location_id
     WHERE pl.practitioner_id = practice_practitioner.id {active}
"""


def practitioner_queryset(*, include_inactive: bool = False) -> QuerySet[Practitioner]:
    """Practitioners, each with `specialty_list` and `location_list`: JSON arrays of
    {id, slug, name} and {id, name, timezone}, ready to render.

    They are correlated subqueries in the practitioners' own query, not prefetches: one round
    trip instead of three, no model instances for the related rows, and PostgreSQL evaluates
    them only for the rows that survive ORDER BY ... LIMIT (the page), whatever the number of
    matches. Without `include_inactive`, inactive practitioners, specialties and locations are
    left out: what a patient may see.

    The SQL fragments of this queryset name the outer table (`practice_practitioner`): use it
    as the main query, not nested inside another one. The search (`PractitionerSearch`)
    selects the same two lists in its own statement.
    """
    practitioners = Practitioner.objects.defer("search_document")
    if not include_inactive:
        practitioners = practitioners.filter(is_active=True)
    specialties = _SPECIALTY_LIST.format(active="" if include_inactive else "AND s.is_active")
    locations = _LOCATION_LIST.format(active="" if include_inactive else "AND l.is_active")
    return practitioners.annotate(
        # Fixed SQL text above: no value from the request reaches it.
        specialty_list=RawSQL(specialties, (), output_field=JSONField()),  # noqa: S611
        location_list=RawSQL(locations, (), output_field=JSONField()),  # noqa: S611
    )


@dataclass(frozen=True)
class PractitionerSearchExtension:
    """A later app's addition to the practitioner search, registered without practice
    importing that app (the dependency runs scheduling -> practice).

    `apply(search, params)` receives the `PractitionerSearch` being built and the raw values
    of the query parameters it declared in `params`. It adds SQL to the search's one
    statement with `search.annotate(name, sql, params)` (a column, e.g. a correlated
    subquery) and `search.filter(sql, params)` (a condition), never a query per
    practitioner; its fragments name the outer row `practice_practitioner`. `fields` are the
    columns it adds; the API renders them on every search result. It raises
    `ValidationError({param: ...})` for a bad parameter.

    The scheduling app adds `next_available` (the earliest free slot) and the
    `available_before=<datetime>` filter on it. Register from the app's `AppConfig.ready()`
    with `practitioner_search_extend(...)`.
    """

    name: str
    apply: Callable[["PractitionerSearch", Mapping[str, str]], None]
    params: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()


_search_extensions: dict[str, PractitionerSearchExtension] = {}


def practitioner_search_extend(extension: PractitionerSearchExtension) -> None:
    """Register (or replace, by name) a search extension."""
    _search_extensions[extension.name] = extension


def practitioner_search_unextend(name: str) -> None:
    _search_extensions.pop(name, None)


def practitioner_search_extensions() -> tuple[PractitionerSearchExtension, ...]:
    return tuple(_search_extensions.values())


_WORD = re.compile(r"[^\W_]+")  # letters and digits
MAX_QUERY_WORDS = 8
# word_similarity at which a query "is" a name: 0.5 lets one typo through ("rivra" ~ "Rivera"
# scores 0.50, "garsia" ~ "Garcia" 0.57) while unrelated names stay below 0.3.
NAME_SIMILARITY = 0.5


def _query_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())[:MAX_QUERY_WORDS]


# strict_word_similarity (how much of a condition's word is in the query, the query's words
# taken whole) at which the query names it: 0.5 for a one-word term lets the usual misspelling
# through ("autisim" 0.50, "arrythmia" 0.62, "stutering" 0.75); a term of several words must
# be nearly all there (0.7), or "heart" would name "weak heart" (0.55) and "pain" "back pain".
CONDITION_SIMILARITY = 0.5
CONDITION_PHRASE_SIMILARITY = 0.7
# Two swapped letters ("autsim") leave too few trigrams in common (0.27): the query is also
# read with each pair of neighbouring letters of a long word swapped back, at most this many
# readings in all (a swap inside a correct word names nothing it did not already name).
SWAP_MIN_LETTERS = 5
MAX_PHRASE_READINGS = 40
# Whether condition `c` is named by the query. Parameters: the phrase's readings (an array),
# the phrase similarity, the word similarity.
_CONDITION_MATCH = """
    c.is_active AND EXISTS (
        SELECT 1 FROM unnest(c.name || c.synonyms) AS t(term), unnest(%s::text[]) AS q(phrase)
         WHERE strict_word_similarity(lower(t.term), q.phrase)
               >= CASE WHEN t.term ~ '[^[:alnum:]]' THEN %s ELSE %s END)
"""


def _phrase_readings(words: list[str]) -> list[str]:
    """The query as typed, then with one pair of neighbouring letters swapped in one of its
    words of `SWAP_MIN_LETTERS` or more ("autsim" -> "autism"), at most
    `MAX_PHRASE_READINGS`."""
    readings = [" ".join(words)]
    for at, word in enumerate(words):
        if len(word) < SWAP_MIN_LETTERS:
            continue
        for i in range(len(word) - 1):
            if word[i] == word[i + 1]:
                continue
            swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
            readings.append(" ".join([*words[:at], swapped, *words[at + 1 :]]))
            if len(readings) >= MAX_PHRASE_READINGS:
                return readings
    return readings


# Practitioners of the named conditions' specialties, and those linked to them: each one
# uncorrelated ARRAY of ids (an InitPlan PostgreSQL runs once per search), so a row costs a
# look in a short array, whatever the number of conditions and words.
_CONDITION_BY_SPECIALTY = f"""
    ARRAY(SELECT ps.practitioner_id FROM practice_practitioner_specialties ps
            JOIN practice_specialty s ON s.id = ps.specialty_id
           WHERE s.is_active AND s.slug IN (
                 SELECT unnest(c.specialty_slugs) FROM practice_condition c
                  WHERE {_CONDITION_MATCH}))
"""
_CONDITION_LINKED = f"""
    ARRAY(SELECT cp.practitioner_id FROM practice_condition_practitioners cp
            JOIN practice_condition c ON c.id = cp.condition_id
           WHERE {_CONDITION_MATCH})
"""

# The text rank, in one SQL expression. Parameters: phrase, NAME_SIMILARITY, phrase,
# tsquery, tsquery, LIKE pattern, then the two condition subqueries' (see above). Each test
# adds to the rank only when it holds, so a row matches exactly when its rank is positive.
_MATCH_RANK = (
    """
    (CASE WHEN word_similarity(%s, practice_practitioner.display_name) >= %s
          THEN word_similarity(%s, practice_practitioner.display_name) * 2 ELSE 0 END
     + CASE WHEN practice_practitioner.search_document @@ to_tsquery('simple', %s)
          THEN ts_rank(practice_practitioner.search_document, to_tsquery('simple', %s))
          ELSE 0 END
     + CASE WHEN EXISTS (
              SELECT 1 FROM practice_practitioner_specialties ps
                JOIN practice_specialty s ON s.id = ps.specialty_id
               WHERE ps.practitioner_id = practice_practitioner.id
                 AND s.is_active AND s.name ILIKE %s)
          THEN 0.5 ELSE 0 END
     + CASE WHEN practice_practitioner.id = ANY("""
    + _CONDITION_LINKED
    + """)
          THEN 0.8 ELSE 0 END
     + CASE WHEN practice_practitioner.id = ANY("""
    + _CONDITION_BY_SPECIALTY
    + """)
          THEN 0.6 ELSE 0 END)
"""
)
_HAS_SPECIALTY = """
    EXISTS (SELECT 1 FROM practice_practitioner_specialties ps
              JOIN practice_specialty s ON s.id = ps.specialty_id
             WHERE ps.practitioner_id = practice_practitioner.id AND s.slug = ANY(%s))
"""
_AT_LOCATION = """
    EXISTS (SELECT 1 FROM practice_practitioner_locations pl
             WHERE pl.practitioner_id = practice_practitioner.id AND pl.location_id = %s)
"""


def _rank_params(words: list[str]) -> tuple:
    """The parameters of `_MATCH_RANK` for the query `words`."""
    phrase = " ".join(words)
    tsquery = " & ".join(f"{word}:*" for word in words)  # letters and digits: no syntax
    # `phrase` is letters, digits and spaces: nothing in it is a LIKE wildcard.
    condition = (_phrase_readings(words), CONDITION_PHRASE_SIMILARITY, CONDITION_SIMILARITY)
    return (phrase, NAME_SIMILARITY, phrase, tsquery, tsquery, f"%{phrase}%", *condition * 2)


_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@functools.cache
def _own_columns() -> tuple[str, ...]:
    """The practitioners' own columns a search row carries (the stored search document is
    left out: only the conditions read it)."""
    # Each is its field's attname: no field of Practitioner names its own db_column.
    return tuple(
        field.attname
        for field in Practitioner._meta.concrete_fields
        if field.name != "search_document"
    )


@functools.cache
def _own_select() -> str:
    """The practitioners' own columns as a SELECT list: built once, not per search."""
    return ", ".join(f"practice_practitioner.{column}" for column in _own_columns())


class PractitionerSearch:
    """The directory search as one SQL statement, written as SQL text with parameters. The ORM
    spent longer building and compiling the search's queryset than PostgreSQL spends running
    it (cProfile over computed searches, bench/request_path.py: 37% of the request).

    Its rows are `Practitioner`s carrying `specialty_list` and `location_list` (as
    `practitioner_queryset`'s do), `match_rank` when a text query ranks them, and the columns
    of the registered extensions. `window(offset, limit)` reads a page and the number of
    matches in one statement (`COUNT(*) OVER ()`), for `clinic.api.WindowCountPagination`;
    `count()` and slices serve Django's `Paginator` (the patient pages); iterating reads every
    match.

    Order: best text match first (when there is a text query), then rating (highest first),
    then display name, then id, so equal rows never swap between pages.
    """

    def __init__(self, *, include_inactive: bool = False) -> None:
        active = "" if include_inactive else "AND {}.is_active"
        self._columns: list[tuple[str, str, tuple]] = []
        self._json: set[str] = set()
        self.annotate(
            "specialty_list", _SPECIALTY_LIST.format(active=active.format("s")), jsonb=True
        )
        self.annotate("location_list", _LOCATION_LIST.format(active=active.format("l")), jsonb=True)
        self._conditions: list[tuple[str, tuple]] = []
        if not include_inactive:
            self.filter("practice_practitioner.is_active")
        self._order = [
            "practice_practitioner.rating_average DESC",
            "practice_practitioner.display_name",
            "practice_practitioner.id",
        ]
        self._empty = False

    def annotate(self, name: str, sql: str, params: Sequence = (), *, jsonb: bool = False) -> None:
        """Add the column `name`: the value of `sql` (an expression over the outer row
        `practice_practitioner`, a correlated subquery at most) on each row; `jsonb` for a
        jsonb value, decoded (Django has psycopg hand jsonb over as text)."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"Not a column name: {name!r}")
        self._columns.append((name, sql, tuple(params)))
        if jsonb:
            self._json.add(name)

    def filter(self, sql: str, params: Sequence = ()) -> None:
        """Keep the rows for which `sql` holds (a condition over `practice_practitioner`)."""
        self._conditions.append((sql, tuple(params)))

    def rank(self, sql: str, params: Sequence = ()) -> None:
        """Keep the rows whose rank `sql` is positive, best first (`match_rank`)."""
        self.annotate("match_rank", sql, params)
        self.filter(f"({sql}) > 0", params)
        self._order.insert(0, "match_rank DESC")

    def none(self) -> None:
        """Match nothing (a text query with no word in it)."""
        self._empty = True

    def _where(self) -> tuple[str, list]:
        params = [value for _sql, values in self._conditions for value in values]
        where = " AND ".join(f"({sql})" for sql, _values in self._conditions)
        return where or "TRUE", params

    def _select(self, extra: str = "") -> tuple[str, list]:
        columns = [_own_select()]
        columns += [f"({sql}) AS {name}" for name, sql, _values in self._columns]
        params = [value for _name, _sql, values in self._columns for value in values]
        where, where_params = self._where()
        sql = (
            f"SELECT {', '.join(columns)}{extra} FROM practice_practitioner WHERE {where} "
            f"ORDER BY {', '.join(self._order)}"
        )
        return sql, params + where_params

    def _rows(self, sql: str, params: list) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _practitioners(self, rows: list[tuple]) -> list[Practitioner]:
        names = _own_columns()  # each column is its field's attname
        own = len(names)
        found = []
        for row in rows:
            practitioner = Practitioner.from_db(DEFAULT_DB_ALIAS, names, row[:own])
            for (name, _sql, _values), value in zip(self._columns, row[own:], strict=True):
                decode = name in self._json and value is not None
                setattr(practitioner, name, json.loads(value) if decode else value)
            found.append(practitioner)
        return found

    def window(self, offset: int, limit: int) -> tuple[list[Practitioner], int]:
        """The rows from `offset` on, at most `limit`, and the number of matches: one
        statement."""
        if self._empty:
            return [], 0
        sql, params = self._select(", COUNT(*) OVER ()")
        rows = self._rows(f"{sql} LIMIT %s OFFSET %s", [*params, limit, offset])
        return self._practitioners([row[:-1] for row in rows]), (rows[0][-1] if rows else 0)

    def count(self) -> int:
        if self._empty:
            return 0
        where, params = self._where()
        rows = self._rows(f"SELECT count(*) FROM practice_practitioner WHERE {where}", params)
        return rows[0][0]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, page: slice) -> list[Practitioner]:
        if not isinstance(page, slice) or page.step is not None:
            raise TypeError("A practitioner search is read by pages: search[start:stop].")
        start = page.start or 0
        if self._empty or (page.stop is not None and page.stop <= start):
            return []
        sql, params = self._select()
        limit = "ALL" if page.stop is None else str(page.stop - start)
        return self._practitioners(self._rows(f"{sql} LIMIT {limit} OFFSET %s", [*params, start]))

    def __iter__(self) -> Iterator[Practitioner]:
        return iter(self[0:])


def practitioner_search(
    *,
    specialty: Iterable[str] = (),
    language: Iterable[str] = (),
    location: int | None = None,
    telehealth: bool | None = None,
    accepting: bool | None = None,
    verified: bool | None = None,
    min_rating: Decimal | None = None,
    q: str = "",
    include_inactive: bool = False,
    extra: Mapping[str, str] | None = None,
) -> PractitionerSearch:
    """The practitioner directory search: filters, text match, a stable order (see
    `PractitionerSearch`).

    Filters on specialties and locations are `EXISTS` subqueries, not joins, so no row
    repeats. The text match keeps practitioners matching the query's words and ranks them by
    how well (`match_rank`, `_MATCH_RANK`): a row matches when the words fit the name by
    trigram word similarity (typos, partial names), when every word is a prefix of a word in
    the name, title or bio (full text on the stored `search_document`), when a specialty's
    name contains the words, or when the words name a condition (`Condition`: its name or a
    synonym, by trigram similarity, so "stutering" finds stuttering, and with two neighbouring
    letters swapped back, so "autsim" finds autism) that the practitioner treats, linked to it
    or through a specialty. The rank adds twice the name similarity (a name is the strongest
    signal; counted only when it is a match, so unrelated names add no noise), the full-text
    rank (name > title > bio), a bonus for the specialty, and one for the condition (more for
    a practitioner linked to it than for one of its specialties). Each clinic's directory is
    hundreds of rows, so PostgreSQL scans it once and evaluates the tests per row: cheaper
    than index scans joined by a BitmapOr.

    Registered `PractitionerSearchExtension`s add their columns and conditions to the same
    statement, given the raw `extra` parameters they declared.
    """
    search = PractitionerSearch(include_inactive=include_inactive)
    specialty = list(specialty)
    if specialty:
        search.filter(_HAS_SPECIALTY, (specialty,))
    language = list(language)
    if language:  # GIN: languages && ...
        search.filter("practice_practitioner.languages && %s::varchar[]", (language,))
    if location is not None:
        search.filter(_AT_LOCATION, (location,))
    flags = (
        ("offers_telehealth", telehealth),
        ("accepts_new_patients", accepting),
        ("is_verified", verified),
    )
    for column, value in flags:
        if value is not None:
            search.filter(f"practice_practitioner.{column} = %s", (value,))
    if min_rating is not None:
        search.filter("practice_practitioner.rating_average >= %s", (min_rating,))
    for extension in _search_extensions.values():
        params = {name: value for name, value in (extra or {}).items() if name in extension.params}
        extension.apply(search, params)
    if q.strip():
        words = _query_words(q)
        if not words:  # only punctuation: nothing can match
            search.none()
        else:
            search.rank(_MATCH_RANK, _rank_params(words))
    return search


# Row scopes ---------------------------------------------------------------------------------

# Which patients a practitioner sees is known where their visits are: scheduling registers it
# when Django starts (practice may not import it). Until then a practitioner sees none.
_patients_seen: Callable[[User], QuerySet] | None = None


def patients_seen_register(seen: Callable[[User], QuerySet]) -> None:
    """Register `seen(user)`: a queryset of the ids (one column) of the patients a
    practitioner's user sees, for the OWN scope of patient rows."""
    global _patients_seen
    _patients_seen = seen


def _patients_seen_by(user: User) -> QuerySet:
    if _patients_seen is None:
        return Patient.objects.none().values("pk")
    return _patients_seen(user)


def _path(path: str, tail: str) -> str:
    return f"{path}__{tail}" if path else tail


def rows_in_scope(
    queryset: QuerySet,
    *,
    user,
    permission: str,
    practitioner: str | None = None,
    patient: str | None = None,
) -> QuerySet:
    """The rows of `queryset` that `user` reaches with `permission` ("app_label.codename"),
    by the row scopes of the grants (clinic.permissions):

    - ALL: every row;
    - OWN (a practitioner): the rows of their own column, through `practitioner` (the path
      from a row to its practitioner, "" for practitioner rows), or, for rows without one,
      the rows of the patients they see, through `patient` (the path to the row's patient,
      "" for patient rows);
    - SELF (a patient): the rows of their own patient record, through `patient`.

    No scope, no row. The filter is a subquery at most: no query of its own."""
    scopes = permission_scopes(user, permission)
    if ALL in scopes:
        return queryset
    reach = []
    if OWN in scopes and practitioner is not None:
        reach.append(Q(**{_path(practitioner, "user"): user}))
    elif OWN in scopes and patient is not None:
        seen = f"{patient}__in" if patient else "pk__in"
        reach.append(Q(**{seen: _patients_seen_by(user)}))
    if SELF in scopes and patient is not None:
        reach.append(Q(**{_path(patient, "user"): user}))
    if not reach:
        return queryset.none()
    condition = reach[0]
    for other in reach[1:]:
        condition |= other
    return queryset.filter(condition)


def row_in_scope(
    *,
    user,
    permission: str,
    practitioner: Practitioner | None = None,
    patient: Patient | None = None,
) -> bool:
    """Whether one row, given by its practitioner and / or patient, is in the scope of
    `permission` for `user` (the rule of `rows_in_scope`). No query unless a practitioner's
    patient must be looked up among those they see."""
    scopes = permission_scopes(user, permission)
    if ALL in scopes:
        return True
    if OWN in scopes and practitioner is not None:
        if practitioner.user_id == user.pk:
            return True
    elif OWN in scopes and patient is not None:
        if Patient.objects.filter(pk=patient.pk, pk__in=_patients_seen_by(user)).exists():
            return True
    return SELF in scopes and patient is not None and patient.user_id == user.pk


# Locations and specialties ------------------------------------------------------------------


def location_list(*, include_inactive: bool = False) -> QuerySet[Location]:
    queryset = Location.objects.order_by("name", "id")
    return queryset if include_inactive else queryset.filter(is_active=True)


def specialty_list(*, include_inactive: bool = False) -> QuerySet[Specialty]:
    queryset = Specialty.objects.order_by("name", "id")
    return queryset if include_inactive else queryset.filter(is_active=True)


# Patients and coverage ----------------------------------------------------------------------


def patient_list_for(
    *, user: User | AnonymousUser, permission: str = "practice.view_patient"
) -> QuerySet[Patient]:
    """The patients `user` reaches with `permission`: every patient, a practitioner's own
    (those they see), a patient's own record, or none (anonymous included)."""
    queryset = Patient.objects.order_by("last_name", "first_name", "id")
    return rows_in_scope(queryset, user=user, permission=permission, patient="")


def patient_get_for_user(*, user: User) -> Patient | None:
    """The patient record linked to a signed-in patient, if any."""
    return Patient.objects.filter(user_id=user.pk).first()


def coverage_list(*, patient: Patient) -> QuerySet[Coverage]:
    """A patient's coverage, primary first, most recent first, with its payer (one query)."""
    # Priorities sort by name: primary < secondary < tertiary.
    return (
        Coverage.objects.filter(patient=patient)
        .select_related("payer")
        .order_by("priority", "-effective_from", "id")
    )


# Payers, service codes, settings ------------------------------------------------------------


def payer_list() -> QuerySet[Payer]:
    return Payer.objects.order_by("name", "id")


def service_code_list() -> QuerySet[ServiceCode]:
    return ServiceCode.objects.order_by("code")


def clinic_settings_get() -> ClinicSettings:
    return ClinicSettings.load()


def staff_two_factor_required() -> bool:
    """The clinic's answer to accounts.two_factor: must staff sign in with a code?"""
    return ClinicSettings.objects.filter(id=1, require_staff_two_factor=True).exists()


# Patient pages --------------------------------------------------------------------------------


def practitioner_get(*, pk: int) -> Practitioner | None:
    """One active practitioner with `specialty_list` and `location_list` (one query)."""
    return practitioner_queryset().filter(pk=pk).first()


def practitioner_languages() -> list[str]:
    """The languages (ISO 639-1 codes) spoken by active practitioners, sorted (one query)."""
    spoken = Practitioner.objects.filter(is_active=True).values_list("languages", flat=True)
    return sorted({code for languages in spoken for code in languages})
