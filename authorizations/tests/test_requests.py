"""Requests for an assessment / authorization (issue 18): the services, the database's
guarantees, the front desk's queue in the admin, and approvals racing each other."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, close_old_connections, connection, transaction
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from authorizations import services
from authorizations.errors import AuthorizationRequestDecidedError
from authorizations.models import Authorization, AuthorizationRequest
from authorizations.tests import factories as af
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def _approve(request, **extra):
    return services.authorization_request_approve(
        request=request,
        number=extra.pop("number", "PA-77"),
        start_date=date(2026, 12, 1),
        end_date=date(2027, 5, 31),
        units_authorized=40,
        **extra,
    )


@pytest.fixture
def asked(acme):
    with in_clinic(acme):
        patient = f.patient()
        coverage = af.coverage(patient)
        code = f.service_code("97156", 15)
        request = services.authorization_request_create(
            patient=patient, service_code=code, visit_name="Parent coaching"
        )
        yield request, coverage, code


def test_approving_creates_the_authorization_for_the_requested_code(asked, make_user, acme):
    request, coverage, code = asked
    clerk = make_user(acme, "front_desk")
    decided = _approve(request, weekly_cap=8, by=clerk)
    assert decided.status == "approved" and decided.decided_by == clerk and decided.decided_at
    authorization = decided.authorization
    assert authorization.coverage == coverage and authorization.number == "PA-77"
    [line] = authorization.lines.all()
    assert list(line.service_codes.all()) == [code]
    assert (line.units_authorized, line.weekly_cap) == (40, 8)


def test_approving_without_coverage_names_the_field_and_changes_nothing(acme):
    with in_clinic(acme):
        request = services.authorization_request_create(
            patient=f.patient(), service_code=f.service_code("97156", 15)
        )
        with pytest.raises(ValidationError) as refused:
            _approve(request)
        assert "coverage" in refused.value.message_dict
        request.refresh_from_db()
        assert request.status == "pending" and not Authorization.objects.exists()


def test_declining_needs_a_reason_and_a_decided_request_stays_decided(asked):
    request, _, _ = asked
    with pytest.raises(ValidationError) as refused:
        services.authorization_request_decline(request=request, reason="  ")
    assert "reason" in refused.value.message_dict
    services.authorization_request_decline(request=request, reason="No referral on file")
    with pytest.raises(AuthorizationRequestDecidedError) as conflict:
        _approve(request)
    assert conflict.value.status == 409
    request.refresh_from_db()
    assert request.status == "declined" and request.decline_reason == "No referral on file"
    assert not Authorization.objects.exists()


def test_the_database_keeps_one_open_request_per_patient_and_code(asked):
    request, _, code = asked
    again = services.authorization_request_create(patient=request.patient, service_code=code)
    assert again.pk == request.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        AuthorizationRequest.objects.create(
            patient=request.patient, service_code=code, requested_at=request.requested_at
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        AuthorizationRequest.objects.filter(pk=request.pk).update(
            status="declined", decided_at=request.requested_at
        )  # declined without a reason


def test_two_clerks_approving_at_once_create_one_authorization(committed_acme):
    with in_clinic(committed_acme):
        patient = f.patient()
        af.coverage(patient)
        request = services.authorization_request_create(
            patient=patient, service_code=f.service_code("97156", 15)
        )
    barrier = threading.Barrier(2)

    def approve(i: int) -> str:
        try:
            with schema_context(committed_acme.schema_name):
                barrier.wait(timeout=30)
                _approve(AuthorizationRequest(pk=request.pk), number=f"PA-{i}")
                return "ok"
        except AuthorizationRequestDecidedError:
            return "409"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(approve, range(2)))
    close_old_connections()
    assert outcomes == ["409", "ok"]
    with in_clinic(committed_acme):
        assert Authorization.objects.filter(patient=patient).count() == 1


# --- The queue in the admin ---------------------------------------------------------------------


def test_the_front_desk_approves_from_the_queue(asked, admin_as, acme):
    request, coverage, _ = asked
    desk = admin_as("front_desk")
    queue = desk.get("/admin/authorizations/authorizationrequest/")
    assert queue.status_code == 200 and "Approve or decline" in queue.content.decode()
    url = f"/admin/authorizations/authorizationrequest/{request.pk}/decide/"
    page = desk.get(url)
    assert page.status_code == 200 and "Parent coaching" in page.content.decode()
    missing = desk.post(url, {"approve": "1", "coverage": coverage.pk, "number": "PA-9"})
    assert missing.status_code == 200 and "Needed to approve." in missing.content.decode()
    done = desk.post(
        url,
        {
            "approve": "1",
            "coverage": coverage.pk,
            "number": "PA-9",
            "start_date": "2026-12-01",
            "end_date": "2027-05-31",
            "units_authorized": "40",
        },
    )
    assert done.status_code == 302
    with in_clinic(acme):
        request.refresh_from_db()
        assert request.status == "approved" and request.authorization.number == "PA-9"
        assert AuditEvent.objects.filter(
            action="create", object_id=str(request.authorization_id)
        ).exists()


def test_the_front_desk_declines_with_a_reason(asked, admin_as, acme):
    request, _, _ = asked
    desk = admin_as("front_desk")
    url = f"/admin/authorizations/authorizationrequest/{request.pk}/decide/"
    assert "Say why" in desk.post(url, {"decline": "1", "reason": ""}).content.decode()
    assert desk.post(url, {"decline": "1", "reason": "Not covered"}).status_code == 302
    with in_clinic(acme):
        request.refresh_from_db()
        assert request.status == "declined"


@pytest.mark.parametrize("role", ["biller", "practitioner", "patient"])
def test_only_those_who_may_change_requests_decide_them(asked, admin_as, acme, role):
    request, coverage, _ = asked
    url = f"/admin/authorizations/authorizationrequest/{request.pk}/decide/"
    client = admin_as(role)
    assert client.get(url).status_code in (302, 403)
    response = client.post(url, {"decline": "1", "reason": "Nope"})
    assert response.status_code in (302, 403)
    with in_clinic(acme):
        request.refresh_from_db()
        assert request.status == "pending"


def test_another_clinic_cannot_reach_the_request(asked, globex, make_user, client_for):
    request, _, _ = asked
    from tests.fixtures import session_client

    desk = session_client(globex, make_user(globex, "front_desk"))
    url = f"/admin/authorizations/authorizationrequest/{request.pk}/decide/"
    assert desk.get(url).status_code == 403
    with in_clinic(globex):
        assert not AuthorizationRequest.objects.exists()
