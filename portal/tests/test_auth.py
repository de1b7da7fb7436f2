"""Sign up, sign in, sign out and password reset: per clinic, staff to the admin."""

import re
from datetime import date

import pytest

from accounts.models import User
from practice.models import Patient
from practice.services import consent_texts_current
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

from .conftest import PASSWORD, signed_in

SIGNUP = {
    "first_name": "Nora",
    "last_name": "Quinn",
    "email": "Nora.Quinn@example.com",
    "date_of_birth": "1988-04-02",
    "phone": "+1 212 555 0100",
    "password1": "correct horse battery staple",
    "password2": "correct horse battery staple",
    "timezone": "America/Chicago",
    "signed_name": "Nora Quinn",
}


@pytest.fixture(autouse=True)
def _consents_signed(acme):
    """Sign-up signs every consent the clinic currently asks for (issue 18)."""
    with in_clinic(acme):
        SIGNUP["consents"] = [str(text.pk) for text in consent_texts_current()]


def _confirm_link(mail) -> str:
    found = re.search(r"http://acme\.localhost(/signup/[^/\s]+/[^/\s]+/\S*)", mail.body)
    assert found, mail.body
    return found.group(1)


def test_sign_up_mails_a_link_that_opens_the_account_and_signs_in(acme, mailoutbox):
    client = ClinicClient(acme)
    response = client.post("/signup/", SIGNUP)
    assert response.status_code == 302 and response["Location"] == "/signup/sent/"
    with in_clinic(acme):
        user = User.objects.get(email="nora.quinn@example.com")
        assert user.roles == {"patient"} and not user.is_staff and not user.is_active
        patient = Patient.objects.get(user=user)
        assert (patient.first_name, patient.last_name) == ("Nora", "Quinn")
        assert patient.date_of_birth == date(1988, 4, 2)
        assert patient.timezone == "America/Chicago"  # the browser's zone, sent by portal.js
        assert patient.email == "nora.quinn@example.com"
    # Not signed in, and the password does not open the account before the link does.
    assert client.get("/appointments/").status_code == 302
    closed = client.post("/signin/", {"username": user.email, "password": SIGNUP["password1"]})
    assert closed.status_code == 200
    (mail,) = mailoutbox
    assert mail.to == ["nora.quinn@example.com"] and "Confirm" in mail.subject
    link = _confirm_link(mail)
    opened = client.get(link)
    assert opened.status_code == 302 and opened["Location"] == "/practitioners/"
    assert client.get("/appointments/").status_code == 200  # signed in
    with in_clinic(acme):
        assert User.objects.get(pk=user.pk).is_active
    # The link works once.
    again = ClinicClient(acme).get(link)
    assert again.status_code == 302 and again["Location"] == "/signin/"


def test_sign_up_answers_the_same_for_a_taken_email_and_the_mail_says_so(world, mailoutbox):
    """No account enumeration: the page is the same; only the mailbox's owner learns."""
    fresh = ClinicClient(world.clinic).post("/signup/", SIGNUP, follow=True)
    taken = ClinicClient(world.clinic).post(
        "/signup/", {**SIGNUP, "email": world.user.email.upper()}, follow=True
    )
    assert fresh.status_code == taken.status_code == 200
    assert fresh.redirect_chain == taken.redirect_chain == [("/signup/sent/", 302)]
    assert fresh.content == taken.content
    assert "Check your email to finish signing up" in taken.content.decode()
    created, exists = mailoutbox
    assert created.to == ["nora.quinn@example.com"] and "/signup/" in created.body
    assert exists.to == [world.user.email]
    assert "already exists" in exists.body and "/password-reset/" in exists.body
    assert "/signup/" not in exists.body  # no link that opens anything
    with in_clinic(world.clinic):
        assert User.objects.filter(email__iexact=world.user.email).count() == 1
        assert User.objects.get(pk=world.user.pk).check_password(PASSWORD)  # unchanged


def test_sign_up_links_the_record_the_clinic_already_has(acme, mailoutbox):
    with in_clinic(acme):
        existing = f.patient(first="Nora")
        existing.last_name, existing.email = "Quinn", "nora.quinn@example.com"
        existing.date_of_birth = date(1988, 4, 2)
        existing.save()
    response = ClinicClient(acme).post("/signup/", SIGNUP)
    assert response.status_code == 302 and response["Location"] == "/signup/sent/"
    with in_clinic(acme):
        existing.refresh_from_db()
        assert existing.user.email == "nora.quinn@example.com"
        assert Patient.objects.filter(last_name="Quinn").count() == 1
    (mail,) = mailoutbox
    assert ClinicClient(acme).get(_confirm_link(mail))["Location"] == "/practitioners/"


def test_sign_up_does_not_link_a_record_whose_birth_date_differs(acme):
    with in_clinic(acme):
        stranger = f.patient(first="Nora")
        stranger.last_name, stranger.email = "Quinn", "nora.quinn@example.com"
        stranger.date_of_birth = date(1950, 1, 1)
        stranger.save()
    ClinicClient(acme).post("/signup/", SIGNUP)
    with in_clinic(acme):
        stranger.refresh_from_db()
        assert stranger.user is None
        assert Patient.objects.filter(last_name="Quinn").count() == 2


def test_sign_up_refuses_a_weak_password_alike_for_a_taken_email(world, mailoutbox):
    client = ClinicClient(world.clinic)
    weak = {"password1": "short", "password2": "short"}
    new = client.post("/signup/", {**SIGNUP, **weak})
    taken = client.post("/signup/", {**SIGNUP, **weak, "email": world.user.email})
    assert new.status_code == taken.status_code == 400
    assert "too short" in new.content.decode() and "too short" in taken.content.decode()
    assert "already exists" not in taken.content.decode()
    differ = client.post("/signup/", {**SIGNUP, "password2": "something else entirely"})
    assert differ.status_code == 400 and "The two passwords differ." in differ.content.decode()
    assert mailoutbox == []
    with in_clinic(world.clinic):
        assert not User.objects.filter(email="nora.quinn@example.com").exists()


def test_sign_in_sends_a_patient_to_their_appointments_or_back_where_they_were(world):
    client = ClinicClient(world.clinic)
    response = client.post("/signin/", {"username": world.user.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/appointments/"
    other = ClinicClient(world.clinic)
    back = other.post(
        "/signin/",
        {"username": world.user.email, "password": PASSWORD, "next": "/smart/"},
    )
    assert back["Location"] == "/smart/"


def test_sign_in_sends_staff_to_the_admin(acme, make_user):
    desk = make_user(acme, "front_desk", password=PASSWORD)
    response = ClinicClient(acme).post(
        "/signin/", {"username": desk.email, "password": PASSWORD, "next": "/appointments/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    # ... and a staff member who opens a patient page lands in the admin as well.
    assert signed_in(acme, desk).get("/appointments/")["Location"] == "/admin/"


def test_a_patient_of_one_clinic_cannot_sign_in_on_another(world, globex):
    client = ClinicClient(globex)
    response = client.post("/signin/", {"username": world.user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "do not match an account of this clinic" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/appointments/").status_code == 302  # still anonymous
    # The same credentials work at home.
    home = ClinicClient(world.clinic)
    assert (
        home.post("/signin/", {"username": world.user.email, "password": PASSWORD})["Location"]
        == "/appointments/"
    )


def test_a_session_of_one_clinic_is_not_a_session_on_another(world, globex):
    client = signed_in(world.clinic, world.user)
    assert client.get("/appointments/").status_code == 200
    away = ClinicClient(globex)
    away.cookies = client.cookies
    assert away.get("/appointments/").status_code == 302


def test_patient_pages_ask_anonymous_visitors_to_sign_in_and_come_back(world):
    response = ClinicClient(world.clinic).get("/appointments/")
    assert response.status_code == 302
    assert response["Location"] == "/signin/?next=/appointments/"


def test_an_account_without_a_patient_record_gets_a_403_that_says_why(acme, make_user):
    orphan = make_user(acme, "patient")
    response = signed_in(acme, orphan).get("/appointments/")
    assert response.status_code == 403
    assert "not linked to a patient record" in response.content.decode()


def test_sign_out_ends_the_session(patient_client):
    assert patient_client.get("/appointments/").status_code == 200
    response = patient_client.post("/signout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert patient_client.get("/appointments/").status_code == 302


def test_password_reset_mails_a_link_that_works_on_this_clinic_only(world, globex, mailoutbox):
    client = ClinicClient(world.clinic)
    response = client.post("/password-reset/", {"email": world.user.email})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    [mail] = mailoutbox
    assert mail.to == [world.user.email]
    assert "Acme Therapy" in mail.subject
    link = re.search(r"http://acme\.localhost(/password-reset/[^/\s]+/[^/\s]+/)", mail.body)
    assert link, mail.body
    # Clinic B refuses clinic A's link.
    abroad = ClinicClient(globex).get(link.group(1), follow=True)
    assert "invalid or has already been used" in abroad.content.decode()
    # At home: the link leads to the form, and the new password works.
    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {
            "new_password1": "a brand new long password",
            "new_password2": "a brand new long password",
        },
    )
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    assert ClinicClient(world.clinic).login(
        email=world.user.email, password="a brand new long password"
    )


def test_password_reset_for_an_unknown_email_says_the_same_and_sends_nothing(world, mailoutbox):
    response = ClinicClient(world.clinic).post("/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    assert mailoutbox == []
    # The page a known email leads to is the same page, byte for byte.
    unknown = ClinicClient(world.clinic).post(
        "/password-reset/", {"email": "nobody@example.com"}, follow=True
    )
    known = ClinicClient(world.clinic).post(
        "/password-reset/", {"email": world.user.email}, follow=True
    )
    assert unknown.redirect_chain == known.redirect_chain
    assert unknown.status_code == known.status_code == 200
    assert unknown.content == known.content
    assert [mail.to for mail in mailoutbox] == [[world.user.email]]


def _reset(client, email: str, mailoutbox) -> str:
    """Ask for a reset of `email` and choose a new password through the mailed link."""
    sent = len(mailoutbox)
    client.post("/password-reset/", {"email": email})
    assert len(mailoutbox) == sent + 1
    link = re.search(
        r"http://acme\.localhost(/password-reset/[^/\s]+/[^/\s]+/)", mailoutbox[-1].body
    )
    assert link, mailoutbox[-1].body
    form = client.get(link.group(1), follow=True)
    new = "a brand new long password"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    return new


def test_an_unconfirmed_sign_up_does_not_lock_the_email_out(acme, mailoutbox):
    """Someone signed up with another's email and never confirmed: signing up again says the
    account exists; the password reset reaches it, replaces the stranger's password and opens
    the account, and the stranger's confirmation link dies with their password."""
    ClinicClient(acme).post("/signup/", SIGNUP)
    stranger_link = _confirm_link(mailoutbox[0])
    again = ClinicClient(acme).post("/signup/", SIGNUP)
    assert again["Location"] == "/signup/sent/"
    assert "already exists" in mailoutbox[1].body
    owner = ClinicClient(acme)
    new = _reset(owner, SIGNUP["email"], mailoutbox)
    assert owner.login(email="nora.quinn@example.com", password=new)
    assert not ClinicClient(acme).login(
        email="nora.quinn@example.com", password=SIGNUP["password1"]
    )
    assert ClinicClient(acme).get(stranger_link)["Location"] == "/signin/"


def test_an_account_the_clinic_closed_gets_no_reset_link(world, mailoutbox):
    signed_in(world.clinic, world.user)  # it was used...
    with in_clinic(world.clinic):
        User.objects.filter(pk=world.user.pk).update(is_active=False)  # ... then closed
    client = ClinicClient(world.clinic)
    response = client.post("/password-reset/", {"email": world.user.email})
    assert response["Location"] == "/password-reset/sent/"
    assert mailoutbox == []
