"""Sign-up on the patient pages writes a patient's record: a new one is a `create`, the
clinic's existing one linked to the new account an `update` of its `user`, by that account,
from the signing-up browser's address, once; a refused or taken sign-up writes nothing."""

from datetime import date

from accounts.models import User
from audit.models import AuditEvent
from practice.models import Patient
from practice.services import consent_texts_current, patient_register
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

SIGNUP = {
    "first_name": "Nora",
    "last_name": "Quinn",
    "email": "Nora.Quinn@example.com",
    "date_of_birth": "1988-04-02",
    "phone": "+1 212 555 0100",
    "password1": "correct horse battery staple",
    "password2": "correct horse battery staple",
    "timezone": "America/Chicago",
}


def _form(acme, **changes) -> dict:
    """The sign-up form, with the clinic's current consents accepted and signed (a clinic's
    consents are seeded by a migration; a test of the run may have retired them)."""
    with in_clinic(acme):
        consents = [str(text.pk) for text in consent_texts_current()]
    signed = {"consents": consents, "signed_name": "Nora Quinn"} if consents else {}
    return {**SIGNUP, **signed, **changes}


def _shape(event: AuditEvent) -> tuple:
    return (
        event.action,
        event.content_type.model,
        event.object_id,
        event.patient_id,
        tuple(event.fields),
        event.user_id,
    )


def _events(acme, **filters) -> list[tuple]:
    with in_clinic(acme):
        events = AuditEvent.objects.filter(**filters).select_related("content_type")
        return [_shape(e) for e in events.order_by("id")]


def _nora(acme) -> tuple[Patient, User]:
    with in_clinic(acme):
        patient = Patient.objects.select_related("user").get(email="nora.quinn@example.com")
    assert patient.user is not None
    return patient, patient.user


def test_sign_up_records_the_create_of_the_new_record(acme, mailoutbox):
    response = ClinicClient(acme).post("/signup/", _form(acme))
    assert response.status_code == 302 and response["Location"] == "/signup/sent/"
    patient, user = _nora(acme)
    pk = patient.pk
    assert _events(acme, request_id=response["X-Request-ID"]) == [
        ("create", "patient", str(pk), pk, (), user.pk)
    ]
    with in_clinic(acme):
        (event,) = AuditEvent.objects.filter(patient_id=pk)
    assert (event.object_label, event.method, event.path, event.ip) == (
        "sign-up",
        "POST",
        "/signup/",
        "127.0.0.1",
    )


def test_sign_up_records_the_link_of_the_clinic_s_existing_record(acme, mailoutbox):
    with in_clinic(acme):
        existing = f.patient(first="Nora")
        existing.last_name, existing.email = "Quinn", "nora.quinn@example.com"
        existing.date_of_birth = date(1988, 4, 2)
        existing.save()
    response = ClinicClient(acme).post("/signup/", _form(acme))
    assert response.status_code == 302
    patient, user = _nora(acme)
    assert patient.pk == existing.pk
    assert _events(acme, request_id=response["X-Request-ID"]) == [
        ("update", "patient", str(existing.pk), existing.pk, ("user",), user.pk)
    ]
    assert len(_events(acme, patient_id=existing.pk)) == 1


def test_a_refused_or_taken_sign_up_records_nothing(acme, make_user, mailoutbox):
    make_user(acme, "patient", email="taken@example.com")
    client = ClinicClient(acme)
    weak = client.post("/signup/", _form(acme, password1="short", password2="short"))
    taken = client.post("/signup/", _form(acme, email="taken@example.com"))
    assert weak.status_code == 400 and taken.status_code == 302
    assert _events(acme) == []


def test_a_sign_up_without_a_request_is_recorded_at_once(acme):
    with in_clinic(acme):
        patient = patient_register(
            email="nora.quinn@example.com",
            password=SIGNUP["password1"],
            first_name="Nora",
            last_name="Quinn",
            date_of_birth=date(1988, 4, 2),
            timezone="America/Chicago",
        )
    assert _events(acme) == [
        ("create", "patient", str(patient.pk), patient.pk, (), patient.user_id)
    ]
