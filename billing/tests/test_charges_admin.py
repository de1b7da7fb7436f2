"""The billers' admin pages for charges: the unbilled visits with why each is not charged and
"Create charges", the charges list and its void action, episodes with ranked diagnoses and fee
schedules with their fees; a practitioner's own visits only, and nothing of another clinic."""

from decimal import Decimal

from audit.models import AuditEvent
from billing.models import Charge, Episode, FeeSchedule, LedgerEntry
from billing.tests import factories
from scheduling.tests import factories as f
from tests.fixtures import in_clinic, session_client

UNBILLED = "/admin/billing/charge/unbilled/"


def test_a_biller_sees_why_visits_are_unbilled_and_creates_charges(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        visit = factories.billable_visit()
        blocked = factories.billable_visit()
        blocked.episode.diagnoses.all().delete()
    page = biller.get(UNBILLED)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-code="no-diagnosis"' in html and "has no diagnosis" in html
    assert f'value="{visit.appointment.pk}"' in html
    assert f'value="{blocked.appointment.pk}"' not in html  # nothing to tick: it says why
    assert 'value="Create charges"' in html
    done = biller.post(UNBILLED, {"appointment": [visit.appointment.pk, blocked.appointment.pk]})
    assert done.status_code == 302
    with in_clinic(acme):
        charge = Charge.objects.get()
        assert charge.appointment == visit.appointment and charge.amount == Decimal("200.00")
        assert AuditEvent.objects.filter(
            action="create", content_type__model="charge", patient_id=visit.patient.pk
        ).exists()
        assert AuditEvent.objects.filter(
            action="read", content_type__model="appointment", patient_id=blocked.patient.pk
        ).exists()
    listed = biller.get("/admin/billing/charge/")
    assert listed.status_code == 200 and UNBILLED in listed.content.decode()
    ask = biller.post(
        "/admin/billing/charge/", {"action": "void_selected", "_selected_action": [charge.pk]}
    )
    assert ask.status_code == 200 and "Void the charges" in ask.content.decode()
    biller.post(
        "/admin/billing/charge/",
        {
            "action": "void_selected",
            "_selected_action": [charge.pk],
            "confirm": "yes",
            "reason": "Wrong code",
        },
    )
    with in_clinic(acme):
        charge.refresh_from_db()
        assert charge.status == "void" and charge.void_reason == "Wrong code"
        assert LedgerEntry.objects.filter(charge=charge).count() == 2


def test_a_practitioner_sees_their_own_unbilled_visits_and_cannot_charge(acme, make_user):
    user = make_user(acme, "practitioner")
    with in_clinic(acme):
        mine = factories.billable_visit(practitioner=f.practitioner(user=user))
        theirs = factories.billable_visit()
    client = session_client(acme, user)
    html = client.get(UNBILLED).content.decode()
    assert f'id="visit-{mine.appointment.pk}"' in html
    assert f'id="visit-{theirs.appointment.pk}"' not in html
    assert 'value="Create charges"' not in html
    assert client.post(UNBILLED, {"appointment": [mine.appointment.pk]}).status_code == 403
    with in_clinic(acme):
        assert not Charge.objects.exists()


def test_episode_diagnoses_are_ranked_through_the_service(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        patient = f.patient()
    form = {
        "patient": patient.pk,
        "title": "ABA",
        "start_date": "2026-01-05",
        "status": "active",
        "diagnoses-TOTAL_FORMS": "2",
        "diagnoses-INITIAL_FORMS": "0",
        "diagnoses-MIN_NUM_FORMS": "0",
        "diagnoses-MAX_NUM_FORMS": "12",
        "diagnoses-0-rank": "2",
        "diagnoses-0-code": "Z13.41",
        "diagnoses-1-rank": "1",
        "diagnoses-1-code": "F84.0",
    }
    saved = biller.post("/admin/billing/episode/add/", form)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    with in_clinic(acme):
        episode = Episode.objects.get(patient=patient)
        assert [(d.rank, d.code) for d in episode.diagnoses.all()] == [
            (1, "F84.0"),
            (2, "Z13.41"),
        ]
    bad = biller.post("/admin/billing/episode/add/", {**form, "diagnoses-0-code": "84"})
    assert bad.status_code == 200 and "ICD-10-CM" in bad.content.decode()
    with in_clinic(acme):
        assert Episode.objects.filter(patient=patient).count() == 1


def test_fee_schedules_with_fee_inlines_refuse_an_overlap_on_the_field(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        code = f.service_code("97153", 15)
    form = {
        "name": "Self-pay 2026",
        "effective_from": "2026-01-01",
        "fees-TOTAL_FORMS": "1",
        "fees-INITIAL_FORMS": "0",
        "fees-MIN_NUM_FORMS": "0",
        "fees-MAX_NUM_FORMS": "1000",
        "fees-0-service_code": code.pk,
        "fees-0-modifiers": "",
        "fees-0-charge_per_unit": "45.00",
        "fees-0-allowed_per_unit": "45.00",
    }
    assert biller.post("/admin/billing/feeschedule/add/", form).status_code == 302
    again = biller.post("/admin/billing/feeschedule/add/", {**form, "name": "Again"})
    assert again.status_code == 200 and "These dates overlap" in again.content.decode()
    with in_clinic(acme):
        [schedule] = FeeSchedule.objects.all()
        assert schedule.fees.get().charge_per_unit == Decimal("45.00")


def test_a_biller_of_one_clinic_sees_no_unbilled_visit_of_another(acme, globex, make_user):
    with in_clinic(globex):
        visit = factories.billable_visit()
    page = session_client(acme, make_user(acme, "biller")).get(UNBILLED)
    assert page.status_code == 200
    assert f'id="visit-{visit.appointment.pk}"' not in page.content.decode()
    assert "Every completed visit is charged." in page.content.decode()
