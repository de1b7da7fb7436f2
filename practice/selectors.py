"""Reads of a clinic's master data, shared by the API, the admin and the patient pages.

Every selector returns a lazy queryset whose related rows come in a fixed number of queries
(`select_related` / `prefetch_related`), whatever the number of rows: callers paginate and
serialize without N+1 queries.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    SearchVectorExact,
    TrigramWordSimilarity,
)
from django.db.models import (
    Case,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.lookups import GreaterThanOrEqual

from accounts.models import User
from accounts.roles import roles_allow

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


def practitioner_queryset(*, include_inactive: bool = False) -> QuerySet[Practitioner]:
    """Practitioners with their specialties and locations prefetched (two queries for any
    number of rows). Without `include_inactive`, inactive practitioners, specialties and
    locations are left out: what a patient may see."""
    specialties = Specialty.objects.only("id", "slug", "name", "is_active").order_by("name", "id")
    locations = Location.objects.only("id", "name", "timezone", "is_active").order_by("name", "id")
    practitioners = Practitioner.objects.defer("search_document")
    if not include_inactive:
        specialties = specialties.filter(is_active=True)
        locations = locations.filter(is_active=True)
        practitioners = practitioners.filter(is_active=True)
    return practitioners.prefetch_related(
        Prefetch("specialties", queryset=specialties),
        Prefetch("locations", queryset=locations),
    )


@dataclass(frozen=True)
class PractitionerSearchExtension:
    """A later app's addition to the practitioner search, registered without practice
    importing that app (the dependency runs scheduling -> practice).

    `apply(queryset, params)` receives the filtered queryset and the raw values of the query
    parameters it declared in `params`, and returns the queryset with its annotations and
    filters. It must add SQL to the one query (an annotation over a correlated subquery or
    a lateral join), never a query per practitioner. `fields` are the annotations it adds;
    the API renders them on every search result. It raises `ValidationError({param: ...})`
    for a bad parameter.

    The scheduling app plans exactly this: `next_available` (the earliest free slot) as a
    `Subquery(... OuterRef("pk") ... [:1])` annotation, and `available_before=<datetime>` as
    a filter on it. Register from the app's `AppConfig.ready()` with
    `practitioner_search_extend(...)`.
    """

    name: str
    apply: Callable[[QuerySet[Practitioner], Mapping[str, str]], QuerySet[Practitioner]]
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


_WORD = re.compile(r"\w+")
MAX_QUERY_WORDS = 8
# word_similarity at which a query "is" a name: 0.5 lets one typo through ("rivra" ~ "Rivera"
# scores 0.50, "garsia" ~ "Garcia" 0.57) while unrelated names stay below 0.3.
NAME_SIMILARITY = 0.5


def _query_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())[:MAX_QUERY_WORDS]


def _text_match(queryset: QuerySet[Practitioner], words: list[str]) -> QuerySet[Practitioner]:
    """Keep practitioners matching the query `words` and rank them by how well (`match_rank`).

    A row matches when the words fit the name by trigram word similarity (typos, partial
    names), when every word is a prefix of a word in the name, title or bio (full text on the
    stored `search_document`), or when a specialty's name contains the words. The rank adds
    twice the name similarity (a name is the strongest signal; counted only when it is a
    match, so unrelated names add no noise), the full-text rank (name > title > bio) and a
    bonus for the specialty.

    Each clinic's directory is hundreds of rows, so PostgreSQL scans it once and evaluates
    the three tests per row: cheaper than three index scans joined by a BitmapOr.
    """
    phrase = " ".join(words)
    tsquery = SearchQuery(
        " & ".join(f"{word}:*" for word in words), search_type="raw", config="simple"
    )
    name_similarity = TrigramWordSimilarity(phrase, "display_name")
    name_match = GreaterThanOrEqual(name_similarity, NAME_SIMILARITY)
    text_match = SearchVectorExact(F("search_document"), tsquery)
    specialty_match = Exists(
        Practitioner.specialties.through.objects.filter(
            practitioner_id=OuterRef("pk"),
            specialty__is_active=True,
            specialty__name__icontains=phrase,
        )
    )
    return queryset.filter(Q(name_match) | Q(text_match) | Q(specialty_match)).annotate(
        match_rank=ExpressionWrapper(
            Case(When(name_match, then=name_similarity * 2), default=Value(0.0))
            + Case(When(text_match, then=SearchRank(F("search_document"), tsquery)), default=0.0)
            + Case(When(specialty_match, then=Value(0.5)), default=Value(0.0)),
            output_field=FloatField(),
        )
    )


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
) -> QuerySet[Practitioner]:
    """The practitioner directory search: filters, text match, a stable order.

    Order: best text match first (when `q` is given), then rating (highest first), then
    display name, then id, so equal rows never swap between pages. Filters on specialties and
    locations are `EXISTS` subqueries, not joins, so no row repeats and counting the result
    never joins. The whole search is one query for the page (plus one COUNT from the
    paginator) and the two prefetches of `practitioner_queryset`, for any result size.
    Registered `PractitionerSearchExtension`s add their annotations to that same query.
    """
    queryset = practitioner_queryset(include_inactive=include_inactive)
    specialty = tuple(specialty)
    if specialty:
        queryset = queryset.filter(
            Exists(
                Practitioner.specialties.through.objects.filter(
                    practitioner_id=OuterRef("pk"), specialty__slug__in=specialty
                )
            )
        )
    language = tuple(language)
    if language:
        queryset = queryset.filter(languages__overlap=list(language))  # GIN: languages && ...
    if location is not None:
        queryset = queryset.filter(
            Exists(
                Practitioner.locations.through.objects.filter(
                    practitioner_id=OuterRef("pk"), location_id=location
                )
            )
        )
    if telehealth is not None:
        queryset = queryset.filter(offers_telehealth=telehealth)
    if accepting is not None:
        queryset = queryset.filter(accepts_new_patients=accepting)
    if verified is not None:
        queryset = queryset.filter(is_verified=verified)
    if min_rating is not None:
        queryset = queryset.filter(rating_average__gte=min_rating)
    for extension in _search_extensions.values():
        params = {name: value for name, value in (extra or {}).items() if name in extension.params}
        queryset = extension.apply(queryset, params)
    ordering = ["-rating_average", "display_name", "id"]
    if q.strip():
        words = _query_words(q)
        if not words:  # only punctuation: nothing can match
            return queryset.none()
        queryset = _text_match(queryset, words)
        ordering.insert(0, "-match_rank")
    return queryset.order_by(*ordering)


# Locations and specialties ------------------------------------------------------------------


def location_list(*, include_inactive: bool = False) -> QuerySet[Location]:
    queryset = Location.objects.order_by("name", "id")
    return queryset if include_inactive else queryset.filter(is_active=True)


def specialty_list(*, include_inactive: bool = False) -> QuerySet[Specialty]:
    queryset = Specialty.objects.order_by("name", "id")
    return queryset if include_inactive else queryset.filter(is_active=True)


# Patients and coverage ----------------------------------------------------------------------


def patient_list_for(*, user: User) -> QuerySet[Patient]:
    """The patients `user` may see: every patient for roles that view patients, otherwise
    only the patient record linked to the user (none for anyone else)."""
    queryset = Patient.objects.order_by("last_name", "first_name", "id")
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if roles_allow(user.roles, "practice.patient", "view"):
        return queryset
    return queryset.filter(user_id=user.pk)


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
