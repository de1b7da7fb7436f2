"""Intake at sign-up (issue 18): insurance (payer, member id, group, subscriber, card photos in
private storage), a guardian or responsible party for minors, and versioned consents signed
with a name and a time; card photos reach staff only, through the admin, audited."""

import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from audit.models import AuditEvent
from practice import rights
from practice.models import ConsentText, Coverage, Guardian, Patient, PatientConsent, Payer
from tests.fixtures import ClinicClient, in_clinic, session_client

SIGNUP = {
    "first_name": "Nora",
    "last_name": "Quinn",
    "email": "nora.quinn@example.com",
    "date_of_birth": "1988-04-02",
    "password1": "correct horse battery staple",
    "password2": "correct horse battery staple",
    "timezone": "America/New_York",
    "signed_name": "Nora Quinn",
}


def png(name: str = "front.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 25), (20, 120, 200)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def intake(acme):
    """Acme with a payer and two consents, one of them in its second version."""
    with in_clinic(acme):
        ConsentText.objects.all().delete()
        treatment = ConsentText.objects.create(
            kind="treatment", version=1, title="Consent to treatment", body="v1", is_active=True
        )
        newer = ConsentText.objects.create(
            kind="treatment", version=2, title="Consent to treatment", body="v2 wording"
        )
        privacy = ConsentText.objects.create(
            kind="privacy", version=1, title="Notice of privacy practices", body="HIPAA notice"
        )
        payer = Payer.objects.create(name="Hudson Valley Health Plan", edi_payer_id="HVHP1")
    yield {"clinic": acme, "payer": payer, "current": [newer, privacy], "old": treatment}
    with in_clinic(acme):
        rights.files_delete(
            name for c in Coverage.objects.all() for name in (c.card_front.name, c.card_back.name)
        )


def sign_up(world, **extra):
    data = {
        **SIGNUP,
        "consents": [str(t.pk) for t in world["current"]],
        "payer": world["payer"].pk,
        "member_id": "HV123456",
        "group_number": "GRP-9",
        **extra,
    }
    return ClinicClient(world["clinic"]).post("/signup/", data)


def test_sign_up_keeps_the_insurance_the_card_photo_privately_and_the_signed_consents(intake):
    response = sign_up(intake, card_front=png())
    assert response.status_code == 302, response.content.decode()[-2000:]
    with in_clinic(intake["clinic"]):
        patient = Patient.objects.get(user__email="nora.quinn@example.com")
        coverage = patient.coverages.get()
        assert (coverage.payer, coverage.member_id, coverage.group_number) == (
            intake["payer"],
            "HV123456",
            "GRP-9",
        )
        assert coverage.subscriber_relationship == "self"
        assert coverage.card_front.name.startswith(f"{intake['clinic'].schema_name}/coverage-")
        assert coverage.card_front.storage.exists(coverage.card_front.name)
        assert not coverage.card_back
        signed = PatientConsent.objects.filter(patient=patient).select_related("consent_text")
        assert {(s.consent_text.kind, s.consent_text.version) for s in signed} == {
            ("treatment", 2),
            ("privacy", 1),
        }
        assert {s.signed_name for s in signed} == {"Nora Quinn"}
        assert all(s.signed_at and s.signed_by_id == patient.user_id for s in signed)


def test_the_card_photo_has_no_public_url(intake):
    sign_up(intake, card_front=png())
    with in_clinic(intake["clinic"]):
        name = Coverage.objects.get().card_front.name
    anyone = ClinicClient(intake["clinic"])
    for url in (f"/no-public-url/{name}", f"/media/{name}", f"/static/{name}"):
        assert anyone.get(url).status_code == 404


def test_sign_up_refuses_a_missing_consent_and_keeps_nothing(intake):
    response = sign_up(intake, consents=[str(intake["current"][1].pk)])
    assert response.status_code == 400
    assert "Read and accept each consent to continue." in response.content.decode()
    with in_clinic(intake["clinic"]):
        assert not User.objects.filter(email="nora.quinn@example.com").exists()


def test_an_old_version_of_a_consent_does_not_count(intake):
    response = sign_up(intake, consents=[str(intake["old"].pk), str(intake["current"][1].pk)])
    assert response.status_code == 400


def test_a_minor_needs_a_guardian(intake):
    minor = {"date_of_birth": "2018-05-06", "first_name": "Leo"}
    refused = sign_up(intake, **minor)
    assert refused.status_code == 400
    assert "A patient under 18 needs a parent or guardian named here." in refused.content.decode()
    accepted = sign_up(
        intake,
        **minor,
        guardian_name="Nora Quinn",
        guardian_relationship="parent",
        guardian_phone="+1 212 555 0101",
        subscriber_relationship="child",
        subscriber_name="Nora Quinn",
        subscriber_date_of_birth="1988-04-02",
    )
    assert accepted.status_code == 302
    with in_clinic(intake["clinic"]):
        leo = Patient.objects.get(first_name="Leo")
        [guardian] = Guardian.objects.filter(patient=leo)
        assert (guardian.name, guardian.relationship) == ("Nora Quinn", "parent")
        coverage = leo.coverages.get()
        assert (coverage.subscriber_relationship, coverage.subscriber_name) == (
            "child",
            "Nora Quinn",
        )
        assert coverage.subscriber_date_of_birth == date(1988, 4, 2)


@pytest.mark.parametrize(
    ("extra", "field_text"),
    [
        ({"card_front": SimpleUploadedFile("card.png", b"%PDF-1.4 not an image")}, "photo"),
        ({"member_id": ""}, "The member id is on the card."),
        ({"subscriber_relationship": "spouse"}, "Name the policy holder."),
    ],
)
def test_bad_insurance_is_refused_naming_the_field(intake, extra, field_text):
    response = sign_up(intake, **extra)
    assert response.status_code == 400 and field_text in response.content.decode()
    with in_clinic(intake["clinic"]):
        assert not Coverage.objects.exists() and not User.objects.exists()


def test_no_insurance_is_a_choice(intake):
    assert sign_up(intake, payer="", member_id="", group_number="").status_code == 302
    with in_clinic(intake["clinic"]):
        assert not Coverage.objects.exists() and Patient.objects.count() == 1


# --- Staff: the patient's page and the card's download ------------------------------------------


def _card_url(intake) -> tuple[Coverage, str]:
    sign_up(intake, card_front=png())
    with in_clinic(intake["clinic"]):
        coverage = Coverage.objects.get()
    return coverage, f"/admin/practice/coverage/{coverage.pk}/card/front/"


def test_staff_download_the_card_photo_and_the_read_is_audited(intake, admin_as):
    coverage, url = _card_url(intake)
    response = admin_as("front_desk").get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert {"private", "no-store"} <= {p.strip() for p in response["Cache-Control"].split(",")}
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\x89PNG")
    with in_clinic(intake["clinic"]):
        assert AuditEvent.objects.filter(
            action="read", object_id=str(coverage.pk), fields=["card_front"]
        ).exists()
    assert admin_as("front_desk").get(url.replace("front", "back")).status_code == 404


@pytest.mark.parametrize(("role", "allowed"), [("biller", True), ("practitioner", False)])
def test_the_download_follows_the_grants(intake, admin_as, role, allowed):
    _, url = _card_url(intake)
    assert admin_as(role).get(url).status_code == (200 if allowed else 403)


def test_patients_and_visitors_cannot_download_a_card(intake, make_user):
    _, url = _card_url(intake)
    with in_clinic(intake["clinic"]):
        patient = Patient.objects.get()
    assert ClinicClient(intake["clinic"]).get(url).status_code == 302  # to the admin's login
    own = session_client(intake["clinic"], patient.user)
    assert own.get(url).status_code in (302, 403)


def test_another_clinic_cannot_download_it(intake, globex, make_user):
    _, url = _card_url(intake)
    desk = session_client(globex, make_user(globex, "front_desk"))
    assert desk.get(url).status_code == 403


def test_the_patients_page_shows_guardians_consents_and_the_card_link(intake, admin_as):
    sign_up(
        intake,
        card_front=png(),
        date_of_birth="2015-01-01",
        guardian_name="Nora Senior",
        guardian_relationship="parent",
        guardian_email="nora.senior@example.com",
    )
    with in_clinic(intake["clinic"]):
        patient = Patient.objects.get()
        coverage = patient.coverages.get()
    page = admin_as("front_desk").get(f"/admin/practice/patient/{patient.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nora Senior" in html and "Consent to treatment" in html
    assert f"/admin/practice/coverage/{coverage.pk}/card/front/" in html
    assert "/no-public-url/" not in html


def test_the_export_has_the_intake_and_erasure_removes_guardians_and_photos(intake, make_user):
    sign_up(
        intake,
        card_front=png(),
        date_of_birth="2015-01-01",
        guardian_name="Nora Senior",
        guardian_relationship="parent",
        guardian_email="nora.senior@example.com",
    )
    with in_clinic(intake["clinic"]):
        patient = Patient.objects.get()
        document = rights.patient_export(patient=patient, staff=False)
        assert document["guardians"][0]["name"] == "Nora Senior"
        assert {row["version"] for row in document["consents"]} == {1, 2}
        assert document["coverages"][0]["card_photos"] == ["front"]
        name = patient.coverages.get().card_front.name
        storage = Coverage._meta.get_field("card_front").storage
        admin = make_user(intake["clinic"], "clinic_admin")
    with in_clinic(intake["clinic"]):
        rights.patient_erase(patient=patient, by=admin, reason="The patient's request")
        assert not Guardian.objects.filter(patient=patient).exists()
        assert set(PatientConsent.objects.values_list("signed_name", flat=True)) == {"(erased)"}
        assert not patient.coverages.get().card_front
    # The photo goes when the erasure commits (this test's transaction never does).
    assert storage.exists(name)
