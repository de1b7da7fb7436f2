"""Practitioner search: every filter, the text match, a stable order, pagination, a constant
number of SQL queries, and the extension hook scheduling will use for `next_available`."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from practice import selectors
from tests.fixtures import in_clinic

from .factories import LocationFactory, PractitionerFactory, SpecialtyFactory
from .helpers import problem_of


@pytest.fixture
def people(acme):
    """Six active practitioners and one inactive, with known ratings, names and flags."""
    with in_clinic(acme):
        cardiology = SpecialtyFactory(slug="cardiology", name="Cardiology")
        failure = SpecialtyFactory(slug="heart-failure", name="Heart failure")
        physio = SpecialtyFactory(slug="physiotherapy", name="Physiotherapy")
        downtown, uptown = LocationFactory(name="Downtown"), LocationFactory(name="Uptown")

        def make(name, rating, specialties, locations, languages, **flags):
            return PractitionerFactory(
                display_name=name,
                rating_average=Decimal(rating),
                specialties=specialties,
                locations=locations,
                languages=languages,
                **flags,
            )

        people = {
            "aoife": make(
                "Dr. Aoife Byrne", "4.80", [cardiology], [downtown], ["en", "ga"],
                offers_telehealth=True, accepts_new_patients=True, is_verified=True,
            ),
            "bartosz": make(
                "Dr. Bartosz Nowak", "4.80", [cardiology], [uptown], ["en", "pl"],
                offers_telehealth=False, is_verified=False,
            ),
            "carmen": make(
                "Dr. Carmen Ruiz", "3.90", [cardiology, failure], [downtown, uptown], ["en", "es"],
                offers_telehealth=True, accepts_new_patients=False, is_verified=True,
                bio="Heart failure clinic and echocardiography.",
            ),
            "dana": make(
                "Dana Ruiz", "4.20", [physio], [uptown], ["en", "es"],
                bio="Cardiac rehabilitation after surgery.",
            ),
            "twin1": make("Sam Twin", "4.00", [physio], [uptown], ["en"]),
            "twin2": make("Sam Twin", "4.00", [physio], [uptown], ["en"]),
            "gone": make("Dr. Eve Gone", "5.00", [cardiology], [downtown], ["en"], is_active=False),
        }  # fmt: skip
        people["downtown"], people["uptown"] = downtown, uptown
    return people


def _search(client, **params) -> list[int]:
    response = client.get("/api/v1/practitioners/", {"page_size": 100, **params})
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _ids(people, *names) -> list[int]:
    return [people[name].pk for name in names]


def test_default_order_is_rating_then_name_then_id(people, client_for, acme):
    assert _search(client_for(acme)) == _ids(
        people, "aoife", "bartosz", "dana", "twin1", "twin2", "carmen"
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"specialty": "cardiology"}, ["aoife", "bartosz", "carmen"]),
        (
            {"specialty": "cardiology,physiotherapy"},
            ["aoife", "bartosz", "dana", "twin1", "twin2", "carmen"],
        ),
        ({"specialty": "no-such-specialty"}, []),
        ({"language": "es"}, ["dana", "carmen"]),
        ({"language": "ga,pl"}, ["aoife", "bartosz"]),
        ({"telehealth": "true"}, ["aoife", "carmen"]),
        ({"telehealth": "false"}, ["bartosz", "dana", "twin1", "twin2"]),
        ({"accepting": "false"}, ["carmen"]),
        ({"verified": "true"}, ["aoife", "carmen"]),
        ({"min_rating": "4.2"}, ["aoife", "bartosz", "dana"]),
        ({"min_rating": "4"}, ["aoife", "bartosz", "dana", "twin1", "twin2"]),
        (
            {
                "specialty": "cardiology", "language": "es", "telehealth": "true",
                "accepting": "false", "verified": "true", "min_rating": "3.5",
            },
            ["carmen"],
        ),
    ],
)  # fmt: skip
def test_each_filter(params, expected, people, client_for, acme):
    assert _search(client_for(acme), **params) == _ids(people, *expected)


def test_location_filter(people, client_for, acme):
    """practice's own filter keeps the practitioners linked to the location; scheduling's
    extension narrows it to those with working hours there (none here: they have no hours;
    portal/tests/test_locations.py tries it with hours)."""
    downtown = people["downtown"].pk
    assert _search(client_for(acme), location=downtown) == []
    at_location = next(
        e for e in selectors.practitioner_search_extensions() if e.name == "slots-at-location"
    )
    selectors.practitioner_search_unextend(at_location.name)
    try:
        assert _search(client_for(acme), location=downtown) == _ids(people, "aoife", "carmen")
        both = _search(client_for(acme), location=downtown, specialty="cardiology", verified="true")
        assert both == _ids(people, "aoife", "carmen")
    finally:
        selectors.practitioner_search_extend(at_location)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("byrne", ["aoife"]),
        ("Byrn", ["aoife"]),  # a partial name
        ("aoife byrne", ["aoife"]),
        ("nowak", ["bartosz"]),
        ("ruiz", ["dana", "carmen"]),  # equal name match: rating decides
        ("cardiac", ["dana"]),  # a word of the bio
        ("rehab", ["dana"]),  # a prefix of a word of the bio
        ("heart", ["carmen"]),  # specialty name and bio
        ("physio", ["dana", "twin1", "twin2"]),  # specialty name
        ("!!!", []),
        ("zzzz", []),
        ("gone", []),  # inactive
    ],
)
def test_text_query(q, expected, people, client_for, acme):
    assert _search(client_for(acme), q=q) == _ids(people, *expected)


@pytest.mark.parametrize(
    "q", ["100%", "%_%", "ñandú O'Brien 漢字", "x:* & !y | (z)", "'; DROP TABLE x; --", "\\"]
)
def test_awkward_query_text_is_searched_as_text(q, people, client_for, acme):
    """Only the letters and digits of `q` reach the text search (as parameters), so no
    input is a tsquery or LIKE syntax error."""
    response = client_for(acme).get("/api/v1/practitioners/", {"q": q})
    assert response.status_code == 200 and response.json()["count"] == 0


def test_a_name_match_ranks_above_a_better_rated_text_match(people, client_for, acme):
    with in_clinic(acme):
        frank = PractitionerFactory(display_name="Dr. Frank Heart", rating_average=Decimal("3.0"))
    found = _search(client_for(acme), q="heart")
    assert found == [frank.pk, people["carmen"].pk]


def test_text_query_combines_with_filters(people, client_for, acme):
    assert _search(client_for(acme), q="ruiz", telehealth="true") == _ids(people, "carmen")


def test_pages_split_the_same_order_without_repeats(people, client_for, acme):
    client = client_for(acme)
    full = _search(client)
    pages, page = [], 1
    while True:
        response = client.get("/api/v1/practitioners/", {"page_size": 2, "page": page}).json()
        pages.extend(row["id"] for row in response["results"])
        assert response["count"] == len(full)
        if not response["next"]:
            break
        page += 1
    assert pages == full


def test_pagination_counts_in_the_page_query(people, client_for, acme):
    client = client_for(acme)
    second = client.get("/api/v1/practitioners/", {"page_size": 4, "page": 2}).json()
    assert second["count"] == 6 and len(second["results"]) == 2
    assert second["next"] is None and "page_size=4" in second["previous"]
    last = client.get("/api/v1/practitioners/", {"page_size": 4, "page": "last"}).json()
    assert last["results"] == second["results"]
    empty = client.get("/api/v1/practitioners/", {"q": "nobody-at-all"}).json()
    assert (empty["count"], empty["results"], empty["next"]) == (0, [], None)
    for page in ("3", "0", "x"):
        response = client.get("/api/v1/practitioners/", {"page_size": 4, "page": page})
        problem_of(response, 404, "not-found")


def test_staff_may_include_inactive_practitioners(people, clients, acme):
    everyone = _search(clients["front_desk"], include_inactive="true")
    assert everyone[0] == people["gone"].pk and len(everyone) == 7
    assert people["gone"].pk not in _search(clients["patient"], include_inactive="true")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_rating": "-1"}, "min_rating"),
        ({"min_rating": "6"}, "min_rating"),
        ({"min_rating": "abc"}, "min_rating"),
        ({"language": "xx"}, "language"),
        ({"language": "en,zz"}, "language"),
        ({"location": "abc"}, "location"),
        ({"telehealth": "maybe"}, "telehealth"),
        ({"q": "x" * 101}, "q"),
    ],
)
def test_bad_search_parameters_are_400_naming_the_parameter(params, field, client_for, acme):
    response = client_for(acme).get("/api/v1/practitioners/", params)
    assert field in problem_of(response, 400, "validation-error")["errors"]


def test_the_selector_serves_admin_and_pages_directly(people, acme):
    with in_clinic(acme):
        found = selectors.practitioner_search(language=["es"], q="ruiz")
        assert [p.pk for p in found] == _ids(people, "dana", "carmen")
        assert all(hasattr(p, "match_rank") for p in found)
        staff = selectors.practitioner_search(specialty=["cardiology"], include_inactive=True)
        assert people["gone"].pk in [p.pk for p in staff]


# Constant number of queries -----------------------------------------------------------------


def _make_directory(acme, count: int) -> None:
    with in_clinic(acme):
        specialties = [SpecialtyFactory(slug=f"s{n}") for n in range(3)]
        locations = [LocationFactory() for _ in range(3)]
        for n in range(count):
            PractitionerFactory(
                display_name=f"Dr. Query {n:03d}",
                specialties=[specialties[n % 3], specialties[(n + 1) % 3]],
                locations=[locations[n % 3], locations[(n + 2) % 3]],
                languages=["en", "es"],
            )


def _queries(client, params) -> int:
    client.get("/api/v1/practitioners/", {"page_size": 1})  # warm the host lookup cache
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/practitioners/", {"page_size": 100, **params})
    assert response.status_code == 200
    return len(captured)


SEARCHES = [
    {},
    {"q": "query", "language": "es", "specialty": "s1", "min_rating": "1"},
    {"telehealth": "false", "accepting": "true", "verified": "false"},
]


@pytest.mark.parametrize("params", SEARCHES)
def test_search_query_count_is_the_same_for_5_and_50_practitioners(
    params, acme, make_user, client_for, django_assert_max_num_queries
):
    """One SQL query per page, whatever the result size: the page with its total
    (`COUNT(*) OVER ()`) and its specialties and locations (JSON subqueries), after
    django-tenants' `SET search_path` for the clinic. Signed in: plus the user with their
    roles (one query)."""
    anonymous, staff = client_for(acme), client_for(acme, make_user(acme, "front_desk"))
    _make_directory(acme, 5)
    small = (_queries(anonymous, params), _queries(staff, params))
    _make_directory(acme, 45)
    with django_assert_max_num_queries(2):
        anonymous.get("/api/v1/practitioners/", {"page_size": 100, **params})
    with django_assert_max_num_queries(3):
        staff.get("/api/v1/practitioners/", {"page_size": 100, **params})
    large = (_queries(anonymous, params), _queries(staff, params))
    assert small == large == (2, 3)
    assert anonymous.get("/api/v1/practitioners/", {"page_size": 100, **params}).json()[
        "count"
    ] in (0, 50, 34)  # the filters keep all, none or the s1 two-thirds


def test_list_query_counts_of_other_resources_are_constant(acme, clients, directory):
    from .factories import CoverageFactory, PatientFactory, PayerFactory

    def counts() -> list[int]:
        out = []
        for url in (
            "/api/v1/patients/",
            f"/api/v1/patients/{directory.other_patient.pk}/coverages/",
            "/api/v1/payers/",
            "/api/v1/locations/",
        ):
            clients["clinic_admin"].get(url)
            with CaptureQueriesContext(connection) as captured:
                assert clients["clinic_admin"].get(url, {"page_size": 100}).status_code == 200
            out.append(len(captured))
        return out

    with in_clinic(acme):
        CoverageFactory(patient=directory.other_patient, payer=directory.payer)
    before = counts()
    with in_clinic(acme):
        for _ in range(20):
            PatientFactory()
            LocationFactory()
            CoverageFactory(patient=directory.other_patient, payer=PayerFactory())
    assert counts() == before
    # SET search_path, user with roles, COUNT, page (+ the patient for coverages); patients and
    # coverages then write their audit events after the response, in one INSERT (SET LOCAL
    # synchronous_commit, then the INSERT, between a SAVEPOINT and its RELEASE in a test)
    assert before == [4 + 4, 5 + 4, 4, 4]


# The extension hook (scheduling's `next_available`) -----------------------------------------


def test_a_search_extension_adds_a_field_and_a_filter_without_extra_queries(
    people, acme, client_for
):
    """A stand-in for scheduling: a correlated-subquery column and a parameter that filters
    on it, registered from outside the practice app."""

    first = """
        SELECT l.name FROM practice_location l
          JOIN practice_practitioner_locations pl ON pl.location_id = l.id
         WHERE pl.practitioner_id = practice_practitioner.id ORDER BY l.name LIMIT 1
    """

    def apply(search, params):
        search.annotate("first_location", first)
        if params.get("first_location_is"):
            search.filter(f"({first}) = %s", (params["first_location_is"],))

    client = client_for(acme)
    before = _queries(client, {})
    selectors.practitioner_search_extend(
        selectors.PractitionerSearchExtension(
            name="test-first-location",
            apply=apply,
            params=("first_location_is",),
            fields=("first_location",),
        )
    )
    try:
        results = client.get("/api/v1/practitioners/").json()["results"]
        assert {row["first_location"] for row in results} == {"Downtown", "Uptown"}
        downtown = _search(client, first_location_is="Downtown")
        assert downtown == _ids(people, "aoife", "carmen")
        assert _queries(client, {"first_location_is": "Uptown"}) == before
    finally:
        selectors.practitioner_search_unextend("test-first-location")
    assert "first_location" not in client.get("/api/v1/practitioners/").json()["results"][0]


# Conditions: what patients search for -------------------------------------------------------


@pytest.fixture
def clinicians(acme):
    """An ABA / speech / cardiology directory, and the conditions the clinic ships with."""
    with in_clinic(acme):
        aba = SpecialtyFactory(slug="behavior-analysis", name="Behavior analysis")
        speech = SpecialtyFactory(slug="speech-therapy", name="Speech therapy")
        rhythm = SpecialtyFactory(slug="electrophysiology", name="Heart rhythm")
        people = {
            "bcba": PractitionerFactory(
                display_name="Maya Lopez", specialties=[aba], rating_average=Decimal("4.9")
            ),
            "slp": PractitionerFactory(
                display_name="Tom Reid", specialties=[speech], rating_average=Decimal("4.1")
            ),
            "ep": PractitionerFactory(
                display_name="Cian Murphy", specialties=[rhythm], rating_average=Decimal("4.5")
            ),
            "gp": PractitionerFactory(display_name="Ann Hale", rating_average=Decimal("5.0")),
        }
    return people


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("autism", ["bcba", "slp"]),  # ABA and speech therapy treat it: rating decides
        ("Autism", ["bcba", "slp"]),
        ("autisim", ["bcba", "slp"]),  # a misspelling
        ("autsim", ["bcba", "slp"]),  # two letters swapped (trigrams alone: 0.27)
        ("my son has autsim", ["bcba", "slp"]),
        ("arrhythmai", ["ep"]),
        ("ASD", ["bcba", "slp"]),  # a synonym
        ("my son has autism", ["bcba", "slp"]),  # the condition inside a sentence
        ("ADHD", ["bcba"]),  # psychology, psychiatry and ABA: only ABA is in this clinic
        ("stuttering", ["slp"]),
        ("stutering", ["slp"]),
        ("stammer", ["slp"]),
        ("arrhythmia", ["ep"]),
        ("arrythmia", ["ep"]),
        ("palpitations", ["ep"]),
        ("afib", ["ep"]),
        ("sunburn", []),
    ],
)
def test_a_condition_finds_the_practitioners_who_treat_it(
    q, expected, clinicians, client_for, acme
):
    assert _search(client_for(acme), q=q) == [clinicians[name].pk for name in expected]


def test_a_clinic_extends_the_conditions_and_links_practitioners(clinicians, client_for, acme):
    from practice.models import Condition

    client = client_for(acme)
    assert _search(client, q="selective mutism") == []
    with in_clinic(acme):
        mutism = Condition.objects.create(
            name="Selective mutism", synonyms=["mutism"], specialty_slugs=["speech-therapy"]
        )
        # the generalist is linked to it by name, and so ranks above the specialty's
        mutism.practitioners.add(clinicians["gp"])
        Condition.objects.filter(name="Stuttering").update(is_active=False)
    assert _search(client, q="selective mutism") == [clinicians["gp"].pk, clinicians["slp"].pk]
    assert _search(client, q="mutisim") == [clinicians["gp"].pk, clinicians["slp"].pk]
    assert _search(client, q="stuttering") == []  # deactivated: no longer understood


def test_a_condition_search_keeps_to_one_query_per_page(clinicians, client_for, acme):
    client = client_for(acme)
    assert _queries(client, {"q": "autism"}) == _queries(client, {"q": "lopez"}) == 2


def test_the_portal_search_box_finds_practitioners_by_condition(clinicians, client_for, acme):
    page = client_for(acme).get("/practitioners/", {"q": "stutering"})
    assert page.status_code == 200
    assert "Tom Reid" in page.content.decode() and "Maya Lopez" not in page.content.decode()
