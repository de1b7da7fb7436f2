"""The clinic admin, role by role: every page each role may open answers 200 and every other
page 403 (patients and visitors go to the login page); the composed patient page; the
authorization alerts and the read-only ledger; users and clinic settings; and no admin page
shows another clinic's rows. The grants are each app's grants.py."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from authorizations.models import Authorization, AuthorizationLine
from authorizations.tests import factories as af
from clinic.permissions import ALL_ROLES
from practice import formats
from scheduling.tests import factories as f
from scheduling.tests.factories import build_world
from tests.fixtures import ClinicClient, in_clinic, session_client

CA, FD, PR, BI, IN = "clinic_admin", "front_desk", "practitioner", "biller", "integrator"
STAFF = (CA, FD, PR, BI, IN)
EVERY_STAFF_ROLE = set(STAFF)

# page -> the roles that open it (200); every other staff role gets 403.
PAGES = {
    "/admin/": EVERY_STAFF_ROLE,
    "/admin/scheduling/board/": EVERY_STAFF_ROLE,
    "/admin/scheduling/board/?view=week": EVERY_STAFF_ROLE,
    "/admin/scheduling/appointment/": EVERY_STAFF_ROLE,
    "/admin/scheduling/appointment/{alpha_visit}/change/": EVERY_STAFF_ROLE,
    "/admin/scheduling/appointmenttype/": EVERY_STAFF_ROLE,
    "/admin/scheduling/appointmenttype/add/": {CA},
    "/admin/scheduling/workinghours/": {CA, FD, PR, IN},
    "/admin/scheduling/workinghours/add/": {CA},
    "/admin/scheduling/timeoff/": {CA, FD, PR, IN},
    "/admin/scheduling/timeoff/add/": {CA, FD, PR, IN},
    "/admin/scheduling/smartbookingjob/": {CA, FD, IN},
    "/admin/scheduling/calendarfeed/": {CA, PR},  # a practitioner's own feed
    "/admin/practice/patient/": EVERY_STAFF_ROLE,
    "/admin/practice/patient/{patient}/change/": EVERY_STAFF_ROLE,
    "/admin/practice/patient/add/": {CA, FD, IN},
    "/admin/practice/coverage/": {CA, FD, BI, IN},
    "/admin/practice/practitioner/": EVERY_STAFF_ROLE,
    "/admin/practice/practitioner/add/": {CA},
    "/admin/practice/payer/": {CA, FD, BI, IN},
    "/admin/practice/payer/add/": {CA},
    "/admin/practice/servicecode/add/": {CA},
    "/admin/practice/clinicsettings/1/change/": {CA},
    "/admin/authorizations/authorization/": EVERY_STAFF_ROLE,
    "/admin/authorizations/authorization/{authorization}/change/": EVERY_STAFF_ROLE,
    "/admin/authorizations/authorization/add/": {CA, FD, IN},
    "/admin/authorizations/unitreservation/": {CA, FD, BI, IN},
    "/admin/authorizations/unitreservation/add/": set(),
    "/admin/accounts/user/": {CA, FD},
    "/admin/accounts/user/add/": {CA},
    "/admin/auth/group/": {CA},
}


@pytest.fixture
def clinic_day(acme, role_users):
    with in_clinic(acme):
        world = build_world(role_users[PR])
    return {
        "alpha_visit": world.alpha_visit.pk,
        "patient": world.patient.pk,
        "authorization": world.line.authorization_id,
        "world": world,
    }


@pytest.mark.parametrize("role", STAFF)
def test_each_role_opens_its_pages_and_gets_403_elsewhere(role, admin_as, clinic_day):
    client = admin_as(role)
    wrong = []
    for template, allowed in PAGES.items():
        url = template.format(**clinic_day)
        status = client.get(url).status_code
        expected = 200 if role in allowed else 403
        if status != expected:
            wrong.append((url, status, expected))
    assert wrong == []


@pytest.mark.parametrize("who", ["patient", "anonymous"])
def test_patients_and_visitors_are_sent_to_the_login_page(who, admin_as, clinic_day):
    client = admin_as(who)
    for template in PAGES:
        response = client.get(template.format(**clinic_day))
        assert response.status_code == 302, template
        assert response["Location"].startswith("/admin/login/"), template
    login = client.get("/admin/login/")
    assert login.status_code == 200  # no redirect loop


def test_the_index_offers_the_board_and_the_menu_follows_the_role(admin_as, clinic_day):
    desk = admin_as(FD).get("/admin/").content.decode()
    assert 'href="/admin/scheduling/board/"' in desk and "Acme Therapy" in desk
    assert "Clinic settings" not in desk
    boss = admin_as(CA).get("/admin/").content.decode()
    assert "/admin/practice/clinicsettings/" in boss
    biller = admin_as(BI).get("/admin/").content.decode()
    assert "Smart booking" not in biller and "Schedule board" in biller


# --- Patients ----------------------------------------------------------------------------------


def test_the_patient_page_combines_coverage_authorizations_and_upcoming_visits(
    admin_as, clinic_day
):
    world = clinic_day["world"]
    page = admin_as(FD).get(f"/admin/practice/patient/{world.patient.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "coverages-TOTAL_FORMS" in body  # coverage inline (practice)
    assert "authorizations-TOTAL_FORMS" in body  # authorization inline
    assert world.line.authorization.number in body
    assert "4 / 40 units" in body  # the utilisation bar
    assert "Upcoming appointments" in body and "Dr. Alpha" in body
    assert f"/admin/scheduling/appointment/{world.alpha_visit.pk}/change/" in body
    assert "Book on the schedule board" in body
    listing = admin_as(FD).get("/admin/practice/patient/").content.decode()
    assert "Next visit" in listing
    # In the clinic's locale (en-US) and zone: "Wed, Dec 16, 10:00 AM".
    shown = formats.datetime_format(
        world.alpha_visit.start, style="day", locale="en-US", zone="America/New_York"
    )
    assert shown in listing


def test_a_practitioner_sees_only_the_patients_they_see(admin_as, clinic_day, acme):
    world = clinic_day["world"]
    client = admin_as(PR)
    listing = client.get("/admin/practice/patient/")
    assert [p.pk for p in listing.context["cl"].result_list] == [world.patient.pk]
    assert (
        client.get(f"/admin/practice/patient/{world.other_patient.pk}/change/").status_code == 403
    )
    page = client.get(f"/admin/practice/patient/{world.patient.pk}/change/").content.decode()
    assert "coverages-TOTAL_FORMS" not in page  # coverage is not a practitioner's business
    assert "Book on the schedule board" not in page
    authorizations = client.get("/admin/authorizations/authorization/")
    owners = {a.patient_id for a in authorizations.context["cl"].result_list}
    assert owners <= {world.patient.pk}
    with in_clinic(acme):
        af.authorization(world.other_patient, f.service_code())
    authorizations = client.get("/admin/authorizations/authorization/")
    assert {a.patient_id for a in authorizations.context["cl"].result_list} == {world.patient.pk}


def test_adding_a_patient_still_posts_only_coverage(admin_as, clinic_day, acme):
    response = admin_as(FD).post(
        "/admin/practice/patient/add/",
        {
            "first_name": "New", "last_name": "Person", "date_of_birth": "2012-02-02",
            "sex": "unknown", "preferred_language": "en", "timezone": "America/New_York",
            "country": "US", "coverages-TOTAL_FORMS": "0", "coverages-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content[:1500]


# --- Authorizations ----------------------------------------------------------------------------


def test_authorization_alert_filters(admin_as, clinic_day, acme):
    world = clinic_day["world"]
    with in_clinic(acme):
        code = f.service_code()
        low, low_line = af.authorization(world.other_patient, code, units=10)
        AuthorizationLine.objects.filter(pk=low_line.pk).update(units_used=9)
        soon, _ = af.authorization(
            world.other_patient, code, end=timezone.localdate() + timedelta(days=10)
        )
    with in_clinic(acme):
        # 40 days left, but its own alert window is 60 days
        wide, _ = af.authorization(
            world.other_patient, code, end=timezone.localdate() + timedelta(days=40)
        )
        Authorization.objects.filter(pk=wide.pk).update(alert_days_before_expiry=60)
        far, _ = af.authorization(
            world.other_patient, code, end=timezone.localdate() + timedelta(days=40)
        )
    client = admin_as(FD)
    base = "/admin/authorizations/authorization/"
    threshold = {a.pk for a in client.get(base, {"alert": "threshold"}).context["cl"].result_list}
    expiring = {a.pk for a in client.get(base, {"alert": "expiring"}).context["cl"].result_list}
    assert low.pk in threshold and soon.pk not in threshold
    assert world.line.authorization_id not in threshold
    assert soon.pk in expiring and low.pk not in expiring
    assert wide.pk in expiring and far.pk not in expiring


def test_the_ledger_is_read_only(admin_as, clinic_day):
    world = clinic_day["world"]
    reservation = world.alpha_visit.unit_reservation_id
    client = admin_as(CA)
    page = client.get(f"/admin/authorizations/unitreservation/{reservation}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    refused = client.post(
        f"/admin/authorizations/unitreservation/{reservation}/change/", {"units": 1}
    )
    assert refused.status_code == 403
    assert (
        client.get(f"/admin/authorizations/unitreservation/{reservation}/delete/").status_code
        == 403
    )


def _authorization_form(client, authorization: Authorization, units: int) -> dict:
    page = client.get(f"/admin/authorizations/authorization/{authorization.pk}/change/")
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = value.isoformat() if hasattr(value, "isoformat") else value
    data = {k: v for k, v in data.items() if v is not None}
    [lines] = [fs.formset for fs in page.context["inline_admin_formsets"]]
    management = lines.management_form
    for name, value in management.initial.items():
        data[f"{management.prefix}-{name}"] = value
    line_form = lines.forms[0]
    prefix = line_form.prefix
    data[f"{prefix}-id"] = line_form.instance.pk
    data[f"{prefix}-authorization"] = authorization.pk
    data[f"{prefix}-service_codes"] = [c.pk for c in line_form.instance.service_codes.all()]
    data[f"{prefix}-units_authorized"] = units
    return data


def test_editing_a_line_never_writes_back_stale_counters(admin_as, clinic_day, acme):
    world = clinic_day["world"]
    client = admin_as(FD)
    authorization = world.line.authorization
    data = _authorization_form(client, authorization, 60)
    # a booking reserves 4 more units after the page was loaded
    with in_clinic(acme):
        from scheduling import services

        services.appointment_book(
            patient=world.patient, practitioner=world.beta, appointment_type=world.visit,
            start=world.at(14),
        )  # fmt: skip
    saved = client.post(f"/admin/authorizations/authorization/{authorization.pk}/change/", data)
    assert saved.status_code == 302, saved.content[:2000]
    with in_clinic(acme):
        line = AuthorizationLine.objects.get(pk=world.line.pk)
        assert (line.units_authorized, line.units_scheduled) == (60, 8)
    too_few = client.post(
        f"/admin/authorizations/authorization/{authorization.pk}/change/",
        _authorization_form(client, authorization, 5),
    )
    assert too_few.status_code == 200  # the form again
    assert b"8 units are already scheduled or used" in too_few.content
    with in_clinic(acme):
        assert AuthorizationLine.objects.get(pk=world.line.pk).units_authorized == 60


# --- Users and settings ------------------------------------------------------------------------


def test_the_clinic_admin_adds_staff_with_a_role_and_no_superuser_switch(
    admin_as, acme, clinic_day
):
    client = admin_as(CA)
    form = client.get("/admin/accounts/user/add/")
    assert b'name="groups"' in form.content and b"is_superuser" not in form.content
    with in_clinic(acme):
        desk_group = Group.objects.get(name=FD).pk
    created = client.post(
        "/admin/accounts/user/add/",
        {"email": "new.desk@acme.test", "full_name": "New Desk", "groups": [desk_group],
         "password1": "a-long-new-password", "password2": "a-long-new-password"},
    )  # fmt: skip
    assert created.status_code == 302, created.content[:2000]
    with in_clinic(acme):
        user = User.objects.get(email="new.desk@acme.test")
        assert user.is_staff and not user.is_superuser and user.roles == {FD}
    change = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert change.status_code == 200 and b'name="is_superuser"' not in change.content
    assert admin_as(FD).post("/admin/accounts/user/add/", {}).status_code == 403
    signed_in = ClinicClient(acme)
    assert signed_in.login(email="new.desk@acme.test", password="a-long-new-password")
    assert signed_in.get("/admin/scheduling/board/").status_code == 200


def test_clinic_settings_belong_to_the_clinic_admin(admin_as, acme, clinic_day):
    from django.forms.models import model_to_dict

    from practice.models import ClinicSettings

    with in_clinic(acme):
        stored = model_to_dict(ClinicSettings.load())
    # Every field the form shows, as stored, with the two this test changes.
    data = {key: value for key, value in stored.items() if value is not None}
    data |= {"slot_step_minutes": 30, "authorization_policy": "warn"}
    assert admin_as(CA).post("/admin/practice/clinicsettings/1/change/", data).status_code == 302
    assert admin_as(FD).post("/admin/practice/clinicsettings/1/change/", data).status_code == 403
    with in_clinic(acme):
        settings = ClinicSettings.load()
        assert (settings.slot_step_minutes, settings.authorization_policy) == (30, "warn")


# --- Tenancy -----------------------------------------------------------------------------------


def test_no_admin_page_shows_another_clinics_rows(acme, globex, make_user, clinic_day):
    with in_clinic(globex):
        outsider_world = build_world(None)
    outsider = make_user(globex, FD)
    client = session_client(globex, outsider)
    patients = {p.pk for p in client.get("/admin/practice/patient/").context["cl"].result_list}
    with in_clinic(globex):
        from practice.models import Patient

        assert patients == set(Patient.objects.values_list("pk", flat=True))
    page = client.get("/admin/scheduling/appointment/").content.decode()
    assert str(clinic_day["world"].patient) not in page
    assert str(outsider_world.patient) in page
    # the globex session presented on acme's host is no session there
    client.defaults["HTTP_HOST"] = "acme.localhost"
    assert client.get("/admin/practice/patient/").status_code == 302


def test_every_role_group_carries_the_board_permissions(acme):
    with in_clinic(acme):
        groups = {g.name: {p.codename for p in g.permissions.all()} for g in Group.objects.all()}
    desk_actions = {"book_appointment", "checkin_appointment", "complete_appointment",
                    "noshow_appointment", "cancel_appointment"}  # fmt: skip
    assert desk_actions <= groups[FD] and desk_actions <= groups[CA]
    assert groups[PR] & desk_actions == {"complete_appointment"}
    assert not groups[BI] & desk_actions
    assert "change_workinghours" in groups[CA] and "change_workinghours" not in groups[FD]
    assert set(ALL_ROLES) <= set(groups)
