from datetime import timedelta

import pytest
from django.utils import timezone

from authorizations.models import Authorization, UnitReservation
from authorizations.tests import factories as af
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


@pytest.fixture
def ctx(acme, make_user, client_for):
    pat_user = make_user(acme, "patient")
    with in_clinic(acme):
        code = f.service_code("97153", 15)
        patient = f.patient(user=pat_user)
        auth, line = af.authorization(patient, code, units=40, threshold=80)
        coverage = af.coverage(patient)
    return {
        "desk": client_for(acme, make_user(acme, "front_desk")),
        "integrator": client_for(acme, make_user(acme, "integrator")),
        "biller": client_for(acme, make_user(acme, "biller")),
        "patient": client_for(acme, pat_user),
        "other": client_for(acme, make_user(acme, "patient")),
        "auth": auth, "line": line, "patient_obj": patient, "coverage": coverage, "acme": acme,
    }  # fmt: skip


def _line_url(ctx, action):
    return f"/api/v1/authorizations/{ctx['auth'].pk}/lines/{ctx['line'].pk}/{action}/"


def test_list_retrieve_with_lines_counters_remaining_and_alerts(ctx):
    ctx["integrator"].post(_line_url(ctx, "reserve"), {"units": 33}, "application/json")
    body = ctx["biller"].get(f"/api/v1/authorizations/{ctx['auth'].pk}/").json()
    [line] = body["lines"]
    assert (line["units_scheduled"], line["units_remaining"], line["percent_used"]) == (33, 7, 82.5)
    assert [a["kind"] for a in body["alerts"]] == ["threshold"]
    listed = ctx["desk"].get("/api/v1/authorizations/", {"alert": "true"}).json()
    assert [a["id"] for a in listed["results"]] == [ctx["auth"].pk]
    assert ctx["desk"].get("/api/v1/authorizations/", {"expiring": 30}).json()["count"] == 0


@pytest.mark.parametrize("days", ["64020016.870624855", "-3.369878693024107e+16", "-1", "4000"])
def test_expiring_far_beyond_any_schedule_is_a_400_naming_expiring(ctx, days):
    """Found by tests/test_fuzz_api.py: ?expiring=64020016.870624855 overflowed the date
    (a 500 for staff and patients alike)."""
    for reader in ("desk", "patient"):
        response = ctx[reader].get("/api/v1/authorizations/", {"expiring": days})
        assert response.status_code == 400, response.content
        assert list(response.json()["errors"]) == ["expiring"]
    assert ctx["desk"].get("/api/v1/authorizations/", {"expiring": 3660}).status_code == 200


def test_patient_sees_own_authorizations_only_and_cannot_write(ctx):
    assert ctx["patient"].get("/api/v1/authorizations/").json()["count"] == 1
    assert ctx["other"].get("/api/v1/authorizations/").json()["count"] == 0
    assert ctx["other"].get(f"/api/v1/authorizations/{ctx['auth'].pk}/").status_code == 404
    assert (
        ctx["patient"].post(_line_url(ctx, "reserve"), {"units": 1}, "application/json").status_code
        == 403
    )


def test_staff_create_with_lines_and_bad_input_names_the_field(ctx):
    today = timezone.localdate()
    body = {
        "patient": ctx["patient_obj"].pk, "coverage": ctx["coverage"].pk, "number": "NEW-1",
        "start_date": today.isoformat(), "end_date": (today + timedelta(days=90)).isoformat(),
        "lines": [{"service_codes": ["97153"], "units_authorized": 96, "weekly_cap": 12}],
    }  # fmt: skip
    created = ctx["desk"].post("/api/v1/authorizations/", body, "application/json")
    assert created.status_code == 201, created.json()
    assert created.json()["lines"][0]["units_remaining"] == 96
    bad = dict(body, number="NEW-2", end_date=(today - timedelta(days=1)).isoformat())
    refused = ctx["desk"].post("/api/v1/authorizations/", bad, "application/json")
    assert refused.status_code == 400 and "end_date" in refused.json()["errors"]
    assert (
        ctx["biller"].post("/api/v1/authorizations/", body, "application/json").status_code == 403
    )
    with in_clinic(ctx["acme"]):
        assert not Authorization.objects.filter(number="NEW-2").exists()


def test_reserve_release_consume_endpoints_with_idempotency(ctx):
    client = ctx["integrator"]
    first = client.post(_line_url(ctx, "reserve"), {"units": 10}, "application/json",
                        HTTP_IDEMPOTENCY_KEY="r-1")  # fmt: skip
    again = client.post(_line_url(ctx, "reserve"), {"units": 10}, "application/json",
                        HTTP_IDEMPOTENCY_KEY="r-1")  # fmt: skip
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    second = client.post(_line_url(ctx, "reserve"), {"units": 10}, "application/json").json()
    consumed = client.post(_line_url(ctx, "consume"), {"reservation": first.json()["id"]},
                           "application/json")  # fmt: skip
    assert consumed.json()["state"] == "consumed"
    released = client.post(_line_url(ctx, "release"), {"reservation": second["id"]},
                           "application/json")  # fmt: skip
    assert released.json()["state"] == "released"
    used = client.post(_line_url(ctx, "consume"), {"units": 5}, "application/json")
    assert used.status_code == 201 and used.json()["state"] == "consumed"
    too_much = client.post(_line_url(ctx, "reserve"), {"units": 26}, "application/json")
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "authorization-exhausted"
    assert too_much.json()["units_left"] == 25
    ctx["line"].refresh_from_db()
    assert (ctx["line"].units_scheduled, ctx["line"].units_used) == (0, 15)
    missing = client.post(_line_url(ctx, "release"), {}, "application/json")
    assert missing.status_code == 400 and "reservation" in missing.json()["errors"]


def test_another_clinic_cannot_see_or_draw_on_these_units(ctx, globex, make_user, client_for):
    foreign = client_for(globex, make_user(globex, "integrator"))
    assert foreign.get(f"/api/v1/authorizations/{ctx['auth'].pk}/").status_code == 404
    assert (
        foreign.post(_line_url(ctx, "reserve"), {"units": 1}, "application/json").status_code == 404
    )
    with in_clinic(ctx["acme"]):
        assert UnitReservation.objects.count() == 0


def _as_sent(ctx) -> dict:
    """The authorization as a GET shows it, read-only members left out: what a client PUTs."""
    body = ctx["desk"].get(f"/api/v1/authorizations/{ctx['auth'].pk}/").json()
    for name in ("id", "payer", "alerts", "created_at", "updated_at"):
        body.pop(name)
    return body


def test_put_replaces_the_lines_and_never_adds_a_line_sent_twice(ctx):
    url = f"/api/v1/authorizations/{ctx['auth'].pk}/"
    body = _as_sent(ctx)
    [line] = body["lines"]
    twice = ctx["desk"].put(url, {**body, "lines": [line, line]}, "application/json")
    assert twice.status_code == 400 and "lines.1.id" in twice.json()["errors"]
    with in_clinic(ctx["acme"]):
        assert list(ctx["auth"].lines.values_list("pk", flat=True)) == [line["id"]]
    changed = ctx["desk"].put(
        url, {**body, "lines": [dict(line, units_authorized=60)]}, "application/json"
    )
    assert changed.status_code == 200, changed.json()
    assert [(x["id"], x["units_authorized"]) for x in changed.json()["lines"]] == [(line["id"], 60)]
    new = {"service_codes": ["97153"], "units_authorized": 8}
    replaced = ctx["desk"].put(url, {**body, "lines": [new, new]}, "application/json")
    assert replaced.status_code == 200, replaced.json()
    with in_clinic(ctx["acme"]):
        kept = list(ctx["auth"].lines.values_list("pk", "units_authorized"))
    assert len(kept) == 2 and line["id"] not in {pk for pk, _ in kept}
    assert {units for _, units in kept} == {8}


def test_put_refuses_to_drop_a_line_the_ledger_draws_on(ctx):
    url = f"/api/v1/authorizations/{ctx['auth'].pk}/"
    ctx["desk"].post(_line_url(ctx, "reserve"), {"units": 3}, "application/json")
    body = _as_sent(ctx)
    new = {"service_codes": ["97153"], "units_authorized": 8}
    refused = ctx["desk"].put(url, {**body, "lines": [new]}, "application/json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "authorization-line-in-use"
    assert "lines" in refused.json()["errors"]
    with in_clinic(ctx["acme"]):
        assert list(ctx["auth"].lines.values_list("pk", "units_scheduled")) == [(ctx["line"].pk, 3)]


def test_patch_to_another_patient_keeping_the_first_coverage_is_refused(ctx):
    url = f"/api/v1/authorizations/{ctx['auth'].pk}/"
    with in_clinic(ctx["acme"]):
        stranger = f.patient()
        theirs = af.coverage(stranger)
    refused = ctx["desk"].patch(url, {"patient": stranger.pk}, "application/json")
    assert refused.status_code == 400 and "patient" in refused.json()["errors"]
    with in_clinic(ctx["acme"]):
        auth = Authorization.objects.get(pk=ctx["auth"].pk)
        assert auth.patient_id == ctx["patient_obj"].pk
    mismatched = ctx["desk"].patch(url, {"coverage": theirs.pk}, "application/json")
    assert mismatched.status_code == 400 and "coverage" in mismatched.json()["errors"]
    moved = ctx["desk"].patch(
        url, {"patient": stranger.pk, "coverage": theirs.pk}, "application/json"
    )
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["patient"], moved.json()["coverage"]) == (stranger.pk, theirs.pk)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_authorization_and_unit_dates_far_from_today_are_400s_naming_the_field(ctx, day):
    body = {
        "patient": ctx["patient_obj"].pk, "coverage": ctx["coverage"].pk, "number": "FAR-1",
        "start_date": timezone.localdate().isoformat(), "end_date": day,
        "lines": [{"service_codes": ["97153"], "units_authorized": 96, "weekly_cap": 12}],
    }  # fmt: skip
    refused = ctx["desk"].post("/api/v1/authorizations/", body, "application/json")
    assert refused.status_code == 400 and "end_date" in refused.json()["errors"]
    reserve = {"units": 1, "service_date": day}
    refused = ctx["integrator"].post(_line_url(ctx, "reserve"), reserve, "application/json")
    assert refused.status_code == 400 and "service_date" in refused.json()["errors"]
    consume = {"units": 1, "service_date": day}
    refused = ctx["integrator"].post(_line_url(ctx, "consume"), consume, "application/json")
    assert refused.status_code == 400 and "service_date" in refused.json()["errors"]
    with in_clinic(ctx["acme"]):
        assert not Authorization.objects.filter(number="FAR-1").exists()
        assert not UnitReservation.objects.exists()
