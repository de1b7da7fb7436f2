"""`/api/v1/authorization-requests/` (issue 18): a patient asks for an assessment /
authorization of a code; the front desk lists the queue and approves (creating the
authorization) or declines it with a reason; everyone else per the role table."""

from datetime import date

import pytest

from audit.models import AuditEvent
from authorizations.models import Authorization, AuthorizationRequest
from authorizations.tests import factories as af
from practice.tests.helpers import problem_of
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

URL = "/api/v1/authorization-requests/"
APPROVAL = {
    "number": "PA-2026-9",
    "start_date": "2026-12-01",
    "end_date": "2027-05-31",
    "units_authorized": 40,
    "weekly_cap": 8,
}


@pytest.fixture
def ctx(acme, make_user, client_for):
    robin_user, casey_user = make_user(acme, "patient"), make_user(acme, "patient")
    with in_clinic(acme):
        code = f.service_code("97156", 15)
        robin, casey = f.patient(user=robin_user), f.patient(user=casey_user)
        coverage = af.coverage(robin)
    return {
        "robin": client_for(acme, robin_user),
        "casey": client_for(acme, casey_user),
        "desk": client_for(acme, make_user(acme, "front_desk")),
        "admin": client_for(acme, make_user(acme, "clinic_admin")),
        "biller": client_for(acme, make_user(acme, "biller")),
        "anonymous": client_for(acme),
        "robin_obj": robin, "casey_obj": casey, "coverage": coverage, "code": code, "acme": acme,
    }  # fmt: skip


def _ask(client, **body):
    return client.post(URL, {"service_code": "97156", **body}, "application/json")


def test_a_patient_asks_for_themselves_and_asking_again_answers_the_open_request(ctx):
    first = _ask(ctx["robin"], visit_name="Parent coaching", message="Our son is 4.")
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["patient"], body["service_code"], body["status"]) == (
        ctx["robin_obj"].pk, "97156", "pending",
    )  # fmt: skip
    assert body["coverage"] == ctx["coverage"].pk and body["authorization_number"] is None
    again = _ask(ctx["robin"])
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    with in_clinic(ctx["acme"]):
        assert AuthorizationRequest.objects.count() == 1
        assert AuditEvent.objects.filter(
            patient_id=ctx["robin_obj"].pk, content_type__model="authorizationrequest"
        ).exists()


def test_a_patient_may_not_ask_for_another_patient_nor_read_their_requests(ctx):
    response = _ask(ctx["robin"], patient=ctx["casey_obj"].pk)
    problem_of(response, 403, "permission-denied")
    casey = _ask(ctx["casey"]).json()
    assert ctx["robin"].get(URL).json()["count"] == 0
    assert ctx["robin"].get(f"{URL}{casey['id']}/").status_code == 404
    assert ctx["casey"].get(URL).json()["count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"service_code": "00000"}, "service_code"), ({"message": "x" * 2001}, "message"), ({}, "")],
)
def test_a_bad_request_names_the_field(ctx, body, field):
    payload = {"service_code": "97156", **body} if body else {}
    response = ctx["robin"].post(URL, payload, "application/json")
    errors = problem_of(response, 400, "validation-error")["errors"]
    assert (field or "service_code") in errors


def test_the_front_desk_lists_the_queue_oldest_first_and_filters_by_status(ctx):
    robin, casey = _ask(ctx["robin"]).json(), _ask(ctx["casey"]).json()
    listed = ctx["desk"].get(URL, {"status": "pending"}).json()
    assert [row["id"] for row in listed["results"]] == [robin["id"], casey["id"]]
    assert ctx["biller"].get(URL).json()["count"] == 2
    assert ctx["desk"].get(URL, {"status": "approved"}).json()["count"] == 0


def test_approving_creates_the_authorization_and_the_patient_reads_its_number(ctx):
    asked = _ask(ctx["robin"]).json()
    response = ctx["desk"].post(f"{URL}{asked['id']}/approve/", APPROVAL, "application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["authorization_number"] == "PA-2026-9"
    with in_clinic(ctx["acme"]):
        authorization = Authorization.objects.get(pk=body["authorization"])
        [line] = authorization.lines.all()
        assert authorization.coverage == ctx["coverage"]
        assert (authorization.start_date, authorization.end_date) == (
            date(2026, 12, 1), date(2027, 5, 31),
        )  # fmt: skip
        assert [c.code for c in line.service_codes.all()] == ["97156"]
        assert (line.units_authorized, line.weekly_cap) == (40, 8)
    mine = ctx["robin"].get(f"{URL}{asked['id']}/").json()
    assert mine["status"] == "approved" and mine["authorization_number"] == "PA-2026-9"
    again = ctx["admin"].post(f"{URL}{asked['id']}/decline/", {"reason": "x"}, "application/json")
    assert problem_of(again, 409, "authorization-request-decided")["request_status"] == "approved"


def test_declining_needs_a_reason_the_patient_reads(ctx):
    asked = _ask(ctx["robin"]).json()
    blank = ctx["admin"].post(f"{URL}{asked['id']}/decline/", {"reason": ""}, "application/json")
    assert "reason" in problem_of(blank, 400, "validation-error")["errors"]
    response = ctx["admin"].post(
        f"{URL}{asked['id']}/decline/", {"reason": "Not covered by your plan."}, "application/json"
    )
    assert response.status_code == 200 and response.json()["status"] == "declined"
    assert ctx["robin"].get(URL).json()["results"][0]["decline_reason"] == (
        "Not covered by your plan."
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_date": "2026-11-01"}, "end_date"),
        ({"units_authorized": 0}, "units_authorized"),
        ({"start_date": "1066-10-14"}, "start_date"),
        ({"number": ""}, "number"),
    ],
)
def test_a_bad_approval_names_the_field_and_creates_nothing(ctx, change, field):
    asked = _ask(ctx["robin"]).json()
    response = ctx["desk"].post(
        f"{URL}{asked['id']}/approve/", {**APPROVAL, **change}, "application/json"
    )
    assert field in problem_of(response, 400, "validation-error")["errors"]
    with in_clinic(ctx["acme"]):
        assert not Authorization.objects.exists()
        assert AuthorizationRequest.objects.get().status == "pending"


def test_approving_with_another_patients_coverage_is_refused(ctx):
    with in_clinic(ctx["acme"]):
        other = af.coverage(ctx["casey_obj"])
    asked = _ask(ctx["robin"]).json()
    response = ctx["desk"].post(
        f"{URL}{asked['id']}/approve/", {**APPROVAL, "coverage": other.pk}, "application/json"
    )
    assert "coverage" in problem_of(response, 400, "validation-error")["errors"]


def test_who_may_decide(ctx):
    asked = _ask(ctx["robin"]).json()
    for role in ("robin", "biller"):
        response = ctx[role].post(f"{URL}{asked['id']}/approve/", APPROVAL, "application/json")
        assert response.status_code in (403, 404), (role, response.status_code)
    assert ctx["anonymous"].get(URL).status_code == 401
    problem_of(_ask(ctx["desk"]), 403, "permission-denied")  # staff approve, patients ask
    with in_clinic(ctx["acme"]):
        assert AuthorizationRequest.objects.get().status == "pending"


def test_another_clinic_sees_none_of_them(ctx, globex, make_user, client_for):
    _ask(ctx["robin"])
    desk = client_for(globex, make_user(globex, "front_desk"))
    assert desk.get(URL).json()["count"] == 0
