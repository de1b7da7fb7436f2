"""The webhooks API: clinic admins only, the secret shown once, URLs checked (SSRF), the
delivery log per subscription, and another clinic's subscriptions out of reach."""

import pytest

from clinic.permissions import CLINIC_ADMIN, FRONT_DESK, INTEGRATOR
from tests.fixtures import in_clinic
from webhooks.models import WebhookDelivery, WebhookSubscription

from .factories import subscribe


@pytest.fixture
def admin_api(acme, make_user, client_for):
    return client_for(acme, make_user(acme, CLINIC_ADMIN))


def test_a_clinic_admin_makes_a_subscription_and_sees_its_secret_once(acme, admin_api):
    answer = admin_api.post(
        "/api/v1/webhooks/",
        {"url": "https://hooks.example.test/in", "events": ["appointment.booked"]},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    made = answer.json()
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["is_active"] and made["events"] == ["appointment.booked"]
    read = admin_api.get(f"/api/v1/webhooks/{made['id']}/").json()
    assert "secret" not in read and read["url"] == "https://hooks.example.test/in"
    assert all("secret" not in row for row in admin_api.get("/api/v1/webhooks/").json()["results"])
    with in_clinic(acme):
        assert WebhookSubscription.objects.get().secret == made["secret"]


def test_a_supplied_secret_is_used(acme, admin_api):
    answer = admin_api.post(
        "/api/v1/webhooks/",
        {"url": "https://h.example.test/", "events": ["claim.paid"], "secret": "s" * 32},
        content_type="application/json",
    )
    assert answer.status_code == 201 and answer.json()["secret"] == "s" * 32


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://h.example.test/", "events": ["appointment.teleported"]}, "events.0"),
        ({"url": "https://h.example.test/", "events": []}, "events"),
        ({"url": "not a url", "events": ["claim.paid"]}, "url"),
        ({"url": "https://h.example.test/", "events": ["claim.paid"], "secret": "short"}, "secret"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(admin_api, body, field):
    answer = admin_api.post("/api/v1/webhooks/", body, content_type="application/json")
    assert answer.status_code == 400
    assert answer["Content-Type"].startswith("application/problem+json")
    assert field in answer.json()["errors"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest/",
        "http://[::1]/",
        "http://10.0.0.5/",
    ],
)
def test_private_urls_are_refused_in_production_settings(acme, admin_api, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    answer = admin_api.post(
        "/api/v1/webhooks/", {"url": url, "events": ["claim.paid"]}, content_type="application/json"
    )
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["type"].endswith("webhook-url-refused") and "url" in problem["errors"]
    with in_clinic(acme):
        assert not WebhookSubscription.objects.exists()


def test_a_disabled_subscription_is_turned_back_on_with_its_count_cleared(
    acme, admin_api, receiver
):
    from django.utils import timezone

    with in_clinic(acme):
        subscription = subscribe(receiver, "/x")
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            is_active=False, consecutive_failures=30, disabled_at=timezone.now(),
            disabled_reason="Disabled after 30 failed deliveries in a row.",
        )  # fmt: skip
    answer = admin_api.patch(
        f"/api/v1/webhooks/{subscription.pk}/", {"is_active": True}, content_type="application/json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["is_active"], body["consecutive_failures"], body["disabled_reason"]) == (
        True, 0, "",
    )  # fmt: skip


@pytest.mark.parametrize("role", [FRONT_DESK, INTEGRATOR, "biller", "practitioner"])
def test_other_roles_are_refused(acme, make_user, client_for, role):
    api = client_for(acme, make_user(acme, role))
    assert api.get("/api/v1/webhooks/").status_code == 403
    assert (
        api.post(
            "/api/v1/webhooks/",
            {"url": "https://h.example.test/", "events": ["claim.paid"]},
            content_type="application/json",
        ).status_code
        == 403
    )


def test_another_clinics_subscription_and_log_are_not_found(
    acme, globex, admin_api, make_user, client_for, receiver
):
    with in_clinic(globex):
        theirs = subscribe(receiver, "/globex")
    assert admin_api.get(f"/api/v1/webhooks/{theirs.pk}/").status_code == 404
    assert admin_api.get(f"/api/v1/webhooks/{theirs.pk}/deliveries/").status_code == 404
    # and globex's admin does not see acme's
    with in_clinic(acme):
        ours = subscribe(receiver, "/acme")
    globex_api = client_for(globex, make_user(globex, CLINIC_ADMIN))
    listed = globex_api.get("/api/v1/webhooks/").json()["results"]
    assert [row["url"] for row in listed] == [receiver.url("/globex")]
    assert ours.url not in {row["url"] for row in listed}


def test_the_delivery_log_lists_a_subscriptions_deliveries(acme, admin_api, receiver):
    from .factories import book, visit_world

    with in_clinic(acme):
        mine = subscribe(receiver, "/mine")
        other = subscribe(receiver, "/other", events=["appointment.cancelled"])
        _, practitioner, kind, patient = visit_world()
        from scheduling.tests import factories as f

        book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        [row] = WebhookDelivery.objects.all()
    log = admin_api.get(f"/api/v1/webhooks/{mine.pk}/deliveries/").json()["results"]
    assert [(d["id"], d["event"], d["status"], d["attempts"]) for d in log] == [
        (row.pk, "appointment.booked", "pending", 0)
    ]
    assert set(log[0]) >= {"response_code", "latency_ms", "next_attempt_at", "event_id"}
    assert admin_api.get(f"/api/v1/webhooks/{other.pk}/deliveries/").json()["results"] == []
    assert admin_api.get(f"/api/v1/webhooks/{other.pk}/deliveries/{row.pk}/").status_code == 404
    assert (
        admin_api.get(f"/api/v1/webhooks/{mine.pk}/deliveries/?event=appointment.booked").json()[
            "count"
        ]
        == 1
    )
