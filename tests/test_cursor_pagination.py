"""Issue 20: the large lists (appointments, a patient's and one's own visits, charges, claims)
page by cursor (`clinic.api.CursorPagination`): every row once, in a stable order, forwards and
backwards, whatever is added between two pages; no `count`; a cursor not written by the API is
a 400 naming `cursor`. The other lists keep page numbers."""

from datetime import timedelta

from billing.tests import factories as bf
from scheduling.services import appointment_book
from scheduling.tests.factories import build_world, local
from tests.fixtures import in_clinic

URL = "/api/v1/appointments/"


def _walk(client, url, params):
    """Every page from the first through `next`; then back through `previous`."""
    pages = [client.get(url, params).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    back = [pages[-1]]
    while back[-1]["previous"]:
        back.append(client.get(back[-1]["previous"]).json())
    return pages, back


def _ids(pages):
    return [row["id"] for page in pages for row in page["results"]]


def _visits(world, count: int) -> None:
    """`count` more visits, three at each hour (one per practitioner): ties on `start`."""
    people = [world.patient, world.other_patient]
    free = [
        (doctor, hour)
        for hour in (13, 14, 15, 16)
        for doctor in (world.alpha, world.beta, world.gamma)
    ]
    for index, (doctor, hour) in enumerate(free[:count]):
        appointment_book(
            patient=people[index % 2],
            practitioner=doctor,
            appointment_type=world.visit,
            start=local(world.day, hour),
        )


def test_appointments_page_by_cursor_in_start_then_id_order(acme, make_user, client_for):
    desk = client_for(acme, make_user(acme, "front_desk"))
    with in_clinic(acme):
        world = build_world()
        _visits(world, 9)
    pages, back = _walk(desk, URL, {"page_size": 2})
    rows = [row for page in pages for row in page["results"]]
    assert "count" not in pages[0] and pages[0]["previous"] is None
    assert len(rows) == 11 and len(pages) == 6
    assert [(r["start"], r["id"]) for r in rows] == sorted((r["start"], r["id"]) for r in rows)
    assert _ids(reversed(back)) == _ids(pages)  # backwards: the same pages
    by_created = _walk(desk, URL, {"page_size": 3, "ordering": "-created_at"})[0]
    assert _ids(by_created) == sorted(_ids(pages), reverse=True)  # created in id order


def test_a_row_added_between_pages_neither_repeats_nor_skips_one(acme, make_user, client_for):
    desk = client_for(acme, make_user(acme, "front_desk"))
    with in_clinic(acme):
        world = build_world()
        _visits(world, 4)
    first = desk.get(URL, {"page_size": 3}).json()
    with in_clinic(acme):  # earlier than every row of the first page
        appointment_book(
            patient=world.patient,
            practitioner=world.gamma,
            appointment_type=world.visit,
            start=local(world.day, 9),
        )
    pages = [first]
    while pages[-1]["next"]:
        pages.append(desk.get(pages[-1]["next"]).json())
    seen = _ids(pages)
    assert len(seen) == len(set(seen)) == 6  # the new row is before the cursor: not seen


def test_a_patients_own_lists_page_by_cursor_too(acme, make_user, client_for):
    user = make_user(acme, "patient")
    with in_clinic(acme):
        world = build_world()
        world.patient.user = user
        world.patient.save(update_fields=["user"])
        _visits(world, 6)
    patient = client_for(acme, user)
    desk = client_for(acme, make_user(acme, "front_desk"))
    own = _ids(_walk(patient, "/api/v1/me/appointments/", {"page_size": 1})[0])
    listed = _ids(_walk(patient, URL, {"page_size": 2})[0])
    by_patient = f"/api/v1/patients/{world.patient.pk}/appointments/"
    assert own == listed == _ids(_walk(desk, by_patient, {"page_size": 2})[0])
    assert len(own) == 4  # build_world's visit and 3 of the 6 more


def test_charges_of_one_day_page_by_cursor_without_losing_a_tie(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        day = local(build_world().day, 10).date() + timedelta(days=7)
        made = [bf.charge(bf.billable_visit(day=day)).pk for _ in range(5)]
    pages, back = _walk(biller, "/api/v1/charges/", {"page_size": 2})
    assert _ids(pages) == sorted(made, reverse=True)  # one service date: newest id first
    assert _ids(reversed(back)) == _ids(pages)
    by_amount = _walk(biller, "/api/v1/charges/", {"page_size": 2, "ordering": "amount"})[0]
    assert sorted(_ids(by_amount)) == sorted(made)


def test_claims_page_by_cursor_newest_first_and_by_amount(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        bf.billing_profile()
        visits = [bf.billable_visit() for _ in range(5)]
        charges = [bf.charge(visit).pk for visit in visits]
    built = biller.post("/api/v1/claims/", {"charges": charges}, content_type="application/json")
    made = [claim["id"] for claim in built.json()["claims"]]
    assert len(made) == 5, built.json()
    pages, back = _walk(biller, "/api/v1/claims/", {"page_size": 2})
    assert "count" not in pages[0] and len(pages) == 3
    assert _ids(pages) == sorted(made, reverse=True)
    assert _ids(reversed(back)) == _ids(pages)
    by_amount = _walk(biller, "/api/v1/claims/", {"page_size": 2, "ordering": "total_charge"})[0]
    amounts = [row["total_charge"] for page in by_amount for row in page["results"]]
    assert sorted(_ids(by_amount)) == sorted(made) and amounts == sorted(amounts, key=float)


def test_a_cursor_the_api_did_not_write_is_a_400_naming_cursor(acme, make_user, client_for):
    desk = client_for(acme, make_user(acme, "front_desk"))
    with in_clinic(acme):
        build_world()
    for cursor in ["not-a-cursor", "cD1bIngiXQ==", "cD0lNUIlMjJ4JTIyJTVE"]:
        answer = desk.get(URL, {"cursor": cursor})
        assert answer.status_code == 400, (cursor, answer.content)
        assert answer["Content-Type"] == "application/problem+json"
        assert list(answer.json()["errors"]) == ["cursor"]


def test_the_schema_says_which_lists_page_by_cursor(acme, client_for):
    paths = client_for(acme).get("/api/schema/", {"format": "json"}).json()["paths"]

    def params(path):
        return {p["name"] for p in paths[path]["get"]["parameters"]}

    for path in [
        URL,
        "/api/v1/me/appointments/",
        "/api/v1/patients/{patient_id}/appointments/",
        "/api/v1/charges/",
        "/api/v1/claims/",
    ]:
        assert {"cursor", "page_size"} <= params(path) and "page" not in params(path), path
    for path in ["/api/v1/patients/", "/api/v1/charges/unbilled/"]:
        assert "page" in params(path) and "cursor" not in params(path), path
