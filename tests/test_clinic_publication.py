"""A clinic's doors: the platform suspends one only after a confirmation with a reason its
staff read, its patients then get a plain "temporarily unavailable" page (no link back into
the same refusal: it was a 403 loop), and a clinic an operator creates stays unpublished until
its own admin publishes its patient pages."""

from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from tenants.models import Clinic
from tenants.services import clinic_create, clinic_publish, clinic_suspend
from tests.fixtures import ClinicClient, in_clinic

PASSWORD = "platform-operator-pass"


def _operator() -> Client:
    # An operator of this module's own: another module's operator may exist with its password.
    with schema_context("public"):
        if not User.objects.filter(email="publisher@platform.test").exists():
            User.objects.create_superuser("publisher@platform.test", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    assert client.login(email="publisher@platform.test", password=PASSWORD)
    return client


def test_suspending_asks_for_confirmation_and_a_reason(committed_acme):
    operator = _operator()
    chosen = {"action": "suspend", "_selected_action": [committed_acme.pk]}
    asked = operator.post("/admin/tenants/clinic/", chosen)
    assert asked.status_code == 200
    assert b"Reason (shown to the clinic" in asked.content and b"Yes, suspend" in asked.content
    assert Clinic.objects.get(pk=committed_acme.pk).is_active  # nothing yet
    no_reason = operator.post("/admin/tenants/clinic/", {**chosen, "post": "yes", "reason": " "})
    assert no_reason.status_code == 200 and b"This field is required" in no_reason.content
    assert Clinic.objects.get(pk=committed_acme.pk).is_active
    done = operator.post(
        "/admin/tenants/clinic/", {**chosen, "post": "yes", "reason": "Contract under review"}
    )
    assert done.status_code == 302
    clinic = Clinic.objects.get(pk=committed_acme.pk)
    assert not clinic.is_active and clinic.suspended_reason == "Contract under review"
    assert clinic.suspended_at is not None


def test_a_suspended_clinic_tells_patients_it_is_unavailable_and_staff_why(
    acme, make_user, client_for
):
    staff = make_user(acme, "front_desk")
    clinic_suspend(clinic=acme, reason="Contract under review")
    for path in ("/", "/appointments/", "/signin/"):
        page = ClinicClient(acme).get(path)
        assert page.status_code == 503, path
        body = page.content.decode()
        assert "temporarily unavailable" in body
        assert 'href="/"' not in body and "<a " not in body  # nothing to loop through
        assert "Contract under review" not in body  # the reason is for the staff
    desk = ClinicClient(acme)
    with in_clinic(acme):
        desk.force_login(staff)
    admin = desk.get("/admin/")
    assert admin.status_code == 403 and b"Contract under review" in admin.content
    api = client_for(acme, staff).get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["code"] == "clinic-suspended"


def test_a_new_clinic_is_unpublished_until_its_admin_publishes_it(committed):
    clinic = clinic_create(
        slug="fjord", name="Fjord Physio", timezone="Europe/Oslo", published=False
    )
    assert not clinic.is_published
    visitor = ClinicClient(clinic)
    home = visitor.get("/")
    assert home.status_code == 404 and b"does not book online yet" in home.content
    assert b"Acme" not in home.content
    assert visitor.get("/signup/").status_code == 404
    assert visitor.get("/admin/login/").status_code == 200  # its staff set it up meanwhile
    with in_clinic(clinic):
        boss = User.objects.create_user("boss@fjord.test", "fjord-admin-pass", is_staff=True)
        desk = User.objects.create_user("desk@fjord.test", "fjord-desk-pass", is_staff=True)
        from django.contrib.auth.models import Group

        boss.groups.add(Group.objects.get(name="clinic_admin"))
        desk.groups.add(Group.objects.get(name="front_desk"))
    front = ClinicClient(clinic)
    with in_clinic(clinic):
        front.force_login(desk)
    assert b"not published yet" in front.get("/admin/").content
    assert front.post("/admin/account/publish/").status_code == 403
    assert not Clinic.objects.get(pk=clinic.pk).is_published
    admin = ClinicClient(clinic)
    with in_clinic(clinic):
        admin.force_login(boss)
    index = admin.get("/admin/").content.decode()
    assert "Publish the patient pages" in index
    assert admin.post("/admin/account/publish/").status_code == 302
    assert Clinic.objects.get(pk=clinic.pk).is_published
    assert ClinicClient(clinic).get("/").status_code == 200
    assert "not published yet" not in admin.get("/admin/").content.decode()


def test_the_platform_admin_creates_clinics_unpublished(committed):
    operator = _operator()
    created = operator.post(
        "/admin/tenants/clinic/add/",
        {
            "slug": "tarn",
            "name": "Tarn Therapy",
            "timezone": "Europe/London",
            "admin_email": "lead@tarn.test",
            "admin_password": "tarn-admin-password",
        },
    )
    assert created.status_code == 302
    clinic = Clinic.objects.get(slug="tarn")
    assert not clinic.is_published
    assert ClinicClient(clinic).get("/").status_code == 404
    clinic_publish(clinic=clinic)
    assert ClinicClient(clinic).get("/").status_code == 200
