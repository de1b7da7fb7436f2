"""The README's role table, tried on every path.

`TABLE` is the README's table ("The back office") as grants. The walk is generated: every
operation of the API's URL conf (each route and method, the permission its view declares),
every admin page of every registered model (changelist, add form, change form) and the
schedule board's endpoints, for every role and anonymous, on a row in the role's scope (the
practitioner user's own column and patient, which is also the patient user's record) and on one
out of it (another practitioner's visit of another patient). What the table allows must not
answer 401, 403 or (in scope) 404; what it refuses answers 401 (anonymous, API), a redirect to
the admin's login (patients and visitors, admin and board), 403, or 404 where rows are hidden
(an API row out of scope); lists hold the in-scope row and, unless the grant reaches every row,
not the other.

The walk reads the grants in force, so it fails when a grant is widened or narrowed against the
table: `test_the_matrix_reports_a_widened_and_a_narrowed_grant` proves it.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework_simplejwt.views import TokenViewBase

from authorizations.models import AuthorizationLine
from authorizations.services import authorization_request_create
from authorizations.tests import factories as af
from backoffice import board
from billing.models import Payment, Remittance
from billing.tests import factories as billing_factories
from clinic.permissions import (
    BILLER,
    CLINIC_ADMIN,
    FRONT_DESK,
    INTEGRATOR,
    OWN,
    PATIENT,
    PRACTITIONER,
    SELF,
    SIGNED_IN,
    Grant,
    GrantPermission,
    grants_install,
    installed_grants,
    required_permission,
    view_action,
)
from integrations.services import api_client_create
from notifications.models import Notification
from practice.models import Patient
from scheduling.models import (
    AppointmentSeries,
    CalendarFeed,
    Closure,
    SmartBookingJob,
    TimeOff,
    WorkingHours,
)
from scheduling.services import appointment_book
from scheduling.tests.factories import build_world
from tests.clock import run_instant
from tests.fixtures import in_clinic, session_client

CA, FD, PR, BI, IN, PA = CLINIC_ADMIN, FRONT_DESK, PRACTITIONER, BILLER, INTEGRATOR, PATIENT
ANON = "anonymous"
ROLES = (CA, FD, PR, BI, IN, PA, ANON)

# --- The README's table, as grants ---------------------------------------------------------------

V = ("view",)
EDIT = ("add", "change", "view")
MANAGE = ("add", "change", "delete", "view")
VISITS = ("view", "change", "book", "checkin", "complete", "noshow", "cancel")


def own(*actions: str) -> Grant:  # a practitioner's own column and the patients they see
    return Grant(actions, OWN)


def mine(*actions: str) -> Grant:  # a patient's own record, through the API's self-service
    return Grant(actions, SELF)


DIRECTORY = {
    "practice.practitioner": V,
    "practice.location": V,
    "practice.specialty": V,
    "practice.condition": V,  # what the search understands (clinic admin: edit)
}
# front desk: "schedule board, appointments: all; book, check in, complete, no-show, cancel",
# "patients / coverage: edit / edit", "authorizations / ledger: edit / read", "hours, time off:
# read, edit time off", "types, practitioners, payers, codes, locations: read", "smart-booking
# jobs: read"; integrators hold the same (but overbooking) and no user list.
DESK = {
    **DIRECTORY,
    # "patients: edit", and hand a patient a copy of their data (export)
    "practice.patient": (*EDIT, "export"),
    "practice.coverage": EDIT,
    "practice.payer": V,
    "practice.servicecode": V,
    "practice.erasurerequest": V,  # what patients asked to be erased
    # intake: "guardians edit; signed consents and their texts read"
    "practice.guardian": EDIT,
    "practice.patientconsent": V,
    "practice.consenttext": V,
    "authorizations.authorization": EDIT,
    "authorizations.authorizationline": EDIT,
    "authorizations.unitreservation": V,
    "authorizations.authorizationrequest": ("change", "view"),  # the queue: approve, decline
    "scheduling.appointment": VISITS,
    "scheduling.appointmentseries": V,
    "scheduling.appointmenttype": V,
    "scheduling.workinghours": V,
    "scheduling.timeoff": MANAGE,
    "scheduling.smartbookingjob": V,
    "scheduling.closure": MANAGE,  # "closures and holidays: edit"
}
# billing: "fees, episodes, charges, claims, remittances, payments, ledger": billers and clinic
# admins run it all (submit claims, post 835s); "edit" of the ledger is adding entries only
REVENUE_CYCLE = {
    "billing.billingprofile": ("change", "view"),
    "billing.payerrules": EDIT,
    "billing.feeschedule": EDIT,
    "billing.fee": MANAGE,
    "billing.diagnosiscode": V,
    "billing.episode": EDIT,
    "billing.episodediagnosis": MANAGE,
    "billing.charge": EDIT,
    "billing.submission": V,
    "billing.claim": (*EDIT, "submit"),
    "billing.claimline": V,
    "billing.remittance": ("add", "view"),
    "billing.remittanceclaim": V,
    "billing.payment": EDIT,
    "billing.ledgerentry": ("add", "view"),
    "billing.provideradjustment": V,
    # "no-show and late-cancel fees: the policy edited; fees read, waived with a reason"
    "billing.missedvisitpolicy": MANAGE,
    "billing.missedvisitfee": ("view", "waive"),
}
# front desk: "fees read, episodes edit, charges read, payments and copays take, balances read"
DESK_BILLING = {
    "billing.feeschedule": V,
    "billing.fee": V,
    "billing.episode": EDIT,
    "billing.episodediagnosis": V,
    "billing.charge": V,
    "billing.payment": ("add", "view"),
    "billing.ledgerentry": V,
    "billing.missedvisitpolicy": V,
    "billing.missedvisitfee": ("view", "waive"),
}
# integrators: "read fees, episodes, charges, claims, payments, balances"
BILLING_READ = {
    label: V
    for label in (
        "billing.feeschedule",
        "billing.fee",
        "billing.episode",
        "billing.episodediagnosis",
        "billing.charge",
        "billing.claim",
        "billing.claimline",
        "billing.payment",
        "billing.ledgerentry",
        "billing.missedvisitpolicy",
        "billing.missedvisitfee",
    )
}
# "the waitlist: edit; offers: read, accept or decline for a patient"
WAITLIST_DESK = {"waitlist.waitlistentry": MANAGE, "waitlist.waitlistoffer": ("view", "accept")}
TABLE: dict[str, dict[str, Grant | tuple[str, ...]]] = {
    CA: {
        **DESK,
        **REVENUE_CYCLE,
        **{label: EDIT for label in DIRECTORY},
        "practice.payer": EDIT,
        "practice.servicecode": EDIT,
        "practice.clinicsettings": ("change", "view"),
        "practice.consenttext": EDIT,  # new versions of the consents' wording
        # "patients: edit, export, erase; erasure requests: read (carried out on the patient)"
        "practice.patient": (*EDIT, "export", "erase"),
        "accounts.user": EDIT,
        "auth.group": V,
        "axes.accessattempt": ("delete", "view"),  # sign-in lockouts: see and unlock
        "scheduling.appointment": (*VISITS, "overbook"),
        "scheduling.appointmenttype": EDIT,
        "scheduling.workinghours": MANAGE,
        "scheduling.calendarfeed": EDIT,
        "audit.auditevent": ("view", "export"),
        # notifications: "the log read; reminder rules, templates and opt-outs edited"
        "notifications.notification": V,
        "notifications.reminderrule": MANAGE,
        "notifications.messagetemplate": MANAGE,
        "notifications.channeloptout": MANAGE,
        # webhooks: "subscriptions edit; the delivery log read and replayed"
        "webhooks.webhooksubscription": MANAGE,
        "webhooks.webhookdelivery": ("view", "replay"),
        **WAITLIST_DESK,
        # "API clients and the clinic's usage: edit (create, rotate, revoke), read usage"
        "integrations.apiclient": ("add", "change", "view", "usage"),
    },
    FD: {
        **DESK,
        **DESK_BILLING,
        "accounts.user": V,
        "scheduling.appointment": (*VISITS, "overbook"),
        "notifications.notification": V,
        "notifications.reminderrule": V,
        "notifications.channeloptout": MANAGE,
        **WAITLIST_DESK,
    },
    IN: {
        **DESK,
        **BILLING_READ,
        "notifications.notification": V,
        "waitlist.waitlistentry": MANAGE,
        "waitlist.waitlistoffer": V,
    },
    # "own column and visits; complete", "own patients (those they see)", "own patients'
    # authorizations", "own hours, own time off", "read types and directory", their own
    # calendar feed
    PR: {
        **DIRECTORY,
        "practice.patient": own("view"),
        "authorizations.authorization": own("view"),
        "authorizations.authorizationline": own("view"),
        "authorizations.authorizationrequest": own("view"),
        "scheduling.appointment": own("view", "change", "complete"),
        "scheduling.appointmentseries": own("view"),
        "scheduling.appointmenttype": V,
        "scheduling.workinghours": own("view"),
        "scheduling.timeoff": own(*MANAGE),
        "scheduling.calendarfeed": own(*EDIT),
        "scheduling.closure": V,
        # the episodes and diagnoses of the patients they see, their charges
        "billing.episode": own(*EDIT),
        "billing.episodediagnosis": own(*MANAGE),
        "billing.diagnosiscode": V,
        "billing.charge": own("view"),
        "notifications.notification": own("view"),  # the messages of their column's visits
        "waitlist.waitlistentry": own("view"),  # the waitlist and offers of their column
        "waitlist.waitlistoffer": own("view"),
    },
    # "read" everything of the schedule, patients, coverage, authorizations and the ledger
    BI: {
        **DIRECTORY,
        "practice.patient": V,
        "practice.coverage": V,
        "practice.payer": V,
        "practice.servicecode": V,
        "practice.guardian": V,
        "practice.patientconsent": V,
        "authorizations.authorization": V,
        "authorizations.authorizationline": V,
        "authorizations.unitreservation": V,
        "authorizations.authorizationrequest": V,
        "scheduling.appointment": V,
        "scheduling.appointmentseries": V,
        "scheduling.appointmenttype": V,
        "scheduling.closure": V,
        **REVENUE_CYCLE,
    },
    # patients: their own record, coverage, authorizations, visits (book, move, cancel) and
    # smart-booking jobs, through the API
    PA: {
        "practice.patient": mine("view", "change", "export"),
        "practice.coverage": mine("view"),
        "authorizations.authorization": mine("view"),
        "authorizations.authorizationrequest": mine("add", "view"),  # from their pages
        "scheduling.appointment": mine("view", "book", "cancel"),
        "scheduling.appointmentseries": mine("view"),
        "scheduling.smartbookingjob": mine("view"),
        # their balance, statements and online payments
        "billing.charge": mine("view"),
        "billing.payment": mine("add", "view"),
        "billing.ledgerentry": mine("view"),
        "billing.missedvisitfee": mine("view"),  # the fees on their account
        "notifications.notification": mine("view"),  # the messages sent to them
        # their waitlist entries (add, change, take off) and their offers (accept, decline)
        "waitlist.waitlistentry": mine(*MANAGE),
        "waitlist.waitlistoffer": mine("view", "accept"),
    },
}


def _grant(value) -> Grant:
    return value if isinstance(value, Grant) else Grant(tuple(value))


def _normal(grants) -> dict:
    return {
        role: {label: (frozenset(_grant(g).actions), _grant(g).scope) for label, g in table.items()}
        for role, table in grants.items()
        if table
    }


def table_scope(role: str, permission: str, *, self_service: bool) -> str | None:
    """The scope in which the table gives `role` the permission ("app_label.codename"), or
    None. A patient's self-service grants count only where the operation serves them."""
    app_label, codename = permission.split(".")
    for label, value in TABLE.get(role, {}).items():
        grant = _grant(value)
        model_app, model = label.split(".")
        if model_app != app_label:
            continue
        for action in grant.actions:
            if codename == f"{action}_{model}":
                if grant.scope == SELF and not self_service:
                    return None
                return grant.scope
    return None


# --- The clinic ----------------------------------------------------------------------------------

# model -> the paths through which a row scope reaches its rows
BINDINGS = {
    "scheduling.appointment": {"practitioner", "patient"},
    "scheduling.appointmentseries": {"practitioner", "patient"},
    "scheduling.workinghours": {"practitioner"},
    "scheduling.timeoff": {"practitioner"},
    "scheduling.calendarfeed": {"practitioner"},
    "scheduling.smartbookingjob": {"patient"},
    "practice.patient": {"patient"},
    "practice.coverage": {"patient"},
    "authorizations.authorization": {"patient"},
    "authorizations.authorizationline": {"patient"},
    "authorizations.unitreservation": {"patient"},
    "billing.payment": {"patient"},
    "billing.episode": {"patient"},
    "billing.charge": {"practitioner", "patient"},
    "notifications.notification": {"practitioner", "patient"},
    "authorizations.authorizationrequest": {"patient"},
    "waitlist.waitlistentry": {"practitioner", "patient"},
    "waitlist.waitlistoffer": {"practitioner", "patient"},
    "billing.missedvisitfee": {"patient"},
}


@dataclass
class Clinic:
    acme: object
    world: object
    users: dict
    rows: dict  # model label -> {"in": pk, "out": pk}; a model with one row: {"in": pk}
    payload_rows: dict  # "in" / "out" -> practitioner, patient


@pytest.fixture
def clinic(acme, make_user) -> Clinic:
    users = {role: make_user(acme, role, full_name=f"The {role}") for role in ROLES[:-1]}
    with in_clinic(acme):
        world = build_world(users[PR])  # Alpha is the practitioner user's own column
        robin, casey = world.patient, world.other_patient
        Patient.objects.filter(pk=robin.pk).update(user=users[PA])  # Robin: the patient user
        casey_auth, casey_line = af.authorization(casey, world.visit.service_code)
        casey_visit = appointment_book(
            patient=casey, practitioner=world.beta, appointment_type=world.visit,
            start=world.at(14),
        )  # fmt: skip

        def time_off(practitioner) -> int:
            start = world.at(9) + timedelta(days=1)
            return TimeOff.objects.create(
                practitioner=practitioner, start=start, end=start + timedelta(hours=1)
            ).pk

        def series(patient, practitioner) -> int:
            return AppointmentSeries.objects.create(
                patient=patient, practitioner=practitioner, appointment_type=world.visit,
                rrule="FREQ=WEEKLY;COUNT=2", first_start=world.at(9) + timedelta(days=2),
                timezone="America/New_York",
            ).pk  # fmt: skip

        # a holiday far from the world's day, for the closures' pages
        Closure.objects.create(
            name="Founders' day", start_date=world.day + timedelta(days=300),
            end_date=world.day + timedelta(days=300),
        )  # fmt: skip
        # a sign-in failure (accounts.lockout), for the admin's page of one
        AccessAttempt.objects.create(
            username="guess@acme.test", ip_address="192.0.2.1", user_agent="curl",
            failures_since_start=1, get_data="", post_data="", http_accept="*/*",
            path_info="/signin/",
        )  # fmt: skip
        rows = {
            "scheduling.appointment": {"in": world.alpha_visit.pk, "out": casey_visit.pk},
            "scheduling.appointmentseries": {
                "in": series(robin, world.alpha),
                "out": series(casey, world.beta),
            },
            "scheduling.workinghours": {
                "in": WorkingHours.objects.filter(practitioner=world.alpha).first().pk,
                "out": WorkingHours.objects.filter(practitioner=world.beta).first().pk,
            },
            "scheduling.timeoff": {"in": time_off(world.alpha), "out": time_off(world.beta)},
            "scheduling.calendarfeed": {
                "in": CalendarFeed.objects.create(practitioner=world.alpha).pk,
                "out": CalendarFeed.objects.create(practitioner=world.beta).pk,
            },
            "scheduling.smartbookingjob": {
                "in": SmartBookingJob.objects.create(patient=robin, request={}).pk,
                "out": SmartBookingJob.objects.create(patient=casey, request={}).pk,
            },
            "practice.patient": {"in": robin.pk, "out": casey.pk},
            "practice.coverage": {
                "in": world.line.authorization.coverage_id,
                "out": casey_auth.coverage_id,
            },
            "authorizations.authorization": {
                "in": world.line.authorization_id,
                "out": casey_auth.pk,
            },
            "authorizations.authorizationline": {"in": world.line.pk, "out": casey_line.pk},
            "billing.payment": {"in": _payment(robin), "out": _payment(casey)},
            "billing.remittance": {
                "in": Remittance.objects.create(
                    payer_identifier="1234567890",
                    trace_number="T1",
                    payment_amount=0,
                    payment_method="NON",
                    x12="",
                ).pk
            },  # fmt: skip
            "authorizations.authorizationrequest": {
                "in": authorization_request_create(
                    patient=robin, service_code=world.visit.service_code
                ).pk,
                "out": authorization_request_create(
                    patient=casey, service_code=world.visit.service_code
                ).pk,
            },
            "authorizations.unitreservation": {
                "in": world.alpha_visit.unit_reservation_id,
                "out": casey_visit.unit_reservation_id,
            },
            "billing.claim": {"in": billing_factories.draft_claim(world.alpha_visit).pk},
            # the confirmations the two bookings wrote (notifications.planning)
            "notifications.notification": {
                "in": Notification.objects.filter(appointment=world.alpha_visit).first().pk,
                "out": Notification.objects.filter(appointment=casey_visit).first().pk,
            },
        }
        rows.update(_billing_rows(world, casey, casey_visit))
        rows.update(_webhook_rows(world))
        rows.update(_waitlist_rows(world, casey))
        rows["integrations.apiclient"] = {
            "in": api_client_create(
                name="Matrix EHR", scopes=["scheduling:read"], created_by=users[CA]
            )[0].pk
        }
        rows.update(_missed_visit_rows(world, casey_visit))
        for model in admin.site._registry:
            label = model._meta.label_lower
            first = model._default_manager.order_by("pk").first()
            if label not in rows and first is not None:
                rows[label] = {"in": first.pk}
        # the board's columns: Alpha's is the practitioner user's, Beta's not
        rows["practice.practitioner"] = {"in": world.alpha.pk, "out": world.beta.pk}
    return Clinic(
        acme=acme,
        world=world,
        users=users,
        rows=rows,
        payload_rows={
            "in": SimpleNamespace(practitioner=world.alpha, patient=robin),
            "out": SimpleNamespace(practitioner=world.beta, patient=casey),
        },
    )


def _payment(patient) -> int:
    return Payment.objects.create(
        patient=patient, method="cash", amount=10, received_at=run_instant()
    ).pk


def _waitlist_rows(world, casey) -> dict:
    """An entry and a held offer of each patient (Robin with Alpha, Casey with Beta), on a
    free afternoon three days after the world's day."""
    from waitlist.models import WaitlistEntry, WaitlistOffer

    def held(entry) -> int:
        start = world.at(13) + timedelta(days=3)
        return WaitlistOffer.objects.create(
            entry=entry, patient=entry.patient, practitioner=entry.practitioner,
            appointment_type=world.visit, start=start, end=start + timedelta(hours=1),
            blocked=(start, start + timedelta(hours=1)),
            expires_at=run_instant() + timedelta(days=1),
        ).pk  # fmt: skip

    entries = {
        patient: WaitlistEntry.objects.create(
            patient=patient,
            practitioner=practitioner,
            appointment_type=world.visit,
            earliest_date=world.day,
            latest_date=world.day + timedelta(days=14),
        )  # fmt: skip
        for patient, practitioner in ((world.patient, world.alpha), (casey, world.beta))
    }
    return {
        "waitlist.waitlistentry": {"in": entries[world.patient].pk, "out": entries[casey].pk},
        "waitlist.waitlistoffer": {
            "in": held(entries[world.patient]),
            "out": held(entries[casey]),
        },
    }


def _missed_visit_rows(world, casey_visit) -> dict:
    """A clinic-wide no-show policy and a no-show fee of each patient (billing.visit_fees)."""
    from billing.models import MissedVisitPolicy
    from billing.visit_fees import fee_charge

    policy = MissedVisitPolicy.objects.create(no_show_fee=25, late_cancel_fee=15)
    fees = {
        side: fee_charge(appointment=visit, kind="no_show").pk
        for side, visit in (("in", world.alpha_visit), ("out", casey_visit))
    }
    return {"billing.missedvisitpolicy": {"in": policy.pk}, "billing.missedvisitfee": fees}


def _billing_rows(world, casey, casey_visit) -> dict:
    """A fee schedule, an episode of each patient and a charge of each visit (billing)."""
    from billing.models import Charge, Episode, EpisodeDiagnosis, FeeSchedule

    def charge(visit, episode) -> int:
        made = Charge.objects.filter(appointment=visit).first()  # the draft claim's, if any
        return made.pk if made else Charge.objects.create(
            appointment=visit, patient=visit.patient, episode=episode,
            service_code=world.visit.service_code, service_date=world.day, units=4,
            place_of_service="11", diagnosis_pointers=[1], amount=200, rendering=visit.practitioner,
        ).pk  # fmt: skip

    episodes = {}
    for patient in (world.patient, casey):
        episodes[patient] = Episode.objects.create(patient=patient, start_date=world.day)
        EpisodeDiagnosis.objects.create(episode=episodes[patient], rank=1, code="F84.0")
    return {
        "billing.feeschedule": {
            "in": FeeSchedule.objects.create(name="Default", effective_from=world.day).pk
        },
        "billing.episode": {"in": episodes[world.patient].pk, "out": episodes[casey].pk},
        "billing.charge": {
            "in": charge(world.alpha_visit, episodes[world.patient]),
            "out": charge(casey_visit, episodes[casey]),
        },
    }


def _webhook_rows(world) -> dict:
    """A subscription and a delivery of its event (webhooks)."""
    from webhooks.models import WebhookDelivery, WebhookEvent
    from webhooks.services import subscription_create

    subscription = subscription_create(url="http://127.0.0.1:9/hook", events=["claim.paid"])
    event = WebhookEvent.objects.create(
        type="claim.paid", created_at=world.at(9), data={}, body="{}"
    )
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event=event, created_at=world.at(9), next_attempt_at=world.at(9)
    )
    return {
        "webhooks.webhooksubscription": {"in": subscription.pk},
        "webhooks.webhookdelivery": {"in": delivery.pk},
    }


# --- Operations --------------------------------------------------------------------------------


@dataclass
class Op:
    surface: str  # "api", "admin" or "board"
    label: str  # "POST appointment-cancel", "GET /admin/scheduling/timeoff/"...
    method: str
    url: Callable[[Clinic, str], str]
    permission: str | None  # None: public; SIGNED_IN; or "app_label.codename"
    self_service: bool = False
    binding: frozenset = frozenset()  # paths a row scope goes through; empty: not scoped
    rows: tuple[str, ...] = ("in",)  # "in", "out"
    out_status: int = 404  # the answer on a row out of scope
    payload: Callable[[Clinic, str], dict] | None = None
    listing: Callable | None = None  # response -> the ids it lists (rows of `model`)
    model: str = ""
    mine: bool = False  # lists only the caller's own rows, whatever their grant

    @property
    def row_bound(self) -> bool:
        """Whether the operation names a row (in its URL or its payload): a 404 there hides a
        row instead of answering a list or an absent record of the caller's own."""
        return self.payload is not None or (bool(self.model) and self.listing is None)


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry, prefix + str(entry.pattern)


def api_views():
    """(pattern, view class, {method: action or None}) of every API route."""
    for pattern, route in _walk(get_resolver("clinic.urls_tenants").url_patterns):
        cls = getattr(pattern.callback, "cls", None)
        if not route.startswith("api/v1/") or cls is None:
            continue
        actions = getattr(pattern.callback, "actions", None)
        if actions is None:
            methods = ("get", "post", "put", "patch", "delete")
            actions = {m: None for m in methods if hasattr(cls, m)}
        yield pattern, cls, actions


def _ids(key: str = "id"):
    def read(response) -> set:
        return {str(row[key]) for row in response.json()["results"]}

    return read


# route name and method -> (what the payload's row scope goes through, payload builder)
def _booking(c: Clinic, row: str, hour: int = 15) -> dict:
    r = c.payload_rows[row]
    return {
        "patient": r.patient.pk,
        "practitioner": r.practitioner.pk,
        "appointment_type": c.world.visit.pk,
        "start": c.world.at(hour).isoformat(),
    }


PAYLOADS: dict[tuple[str, str], tuple[set, Callable]] = {
    ("appointment-list", "post"): ({"practitioner", "patient"}, _booking),
    # a patient checks any practitioner's slot: the check names no patient
    ("appointment-check", "post"): (
        {"practitioner"},
        lambda c, row: {k: v for k, v in _booking(c, row).items() if k != "patient"},
    ),
    ("appointment-series-list", "post"): (
        {"practitioner", "patient"},
        lambda c, row: {**_booking(c, row, 16), "rrule": "FREQ=WEEKLY;COUNT=1"},
    ),
    ("smart-booking-list", "post"): (
        {"patient"},
        lambda c, row: {
            "patient": c.payload_rows[row].patient.pk,
            "specialty": c.world.aba.slug,
            "appointment_type": c.world.visit.pk,
            "earliest_date": c.world.day.isoformat(),
            "latest_date": (c.world.day + timedelta(days=7)).isoformat(),
        },
    ),
    ("authorization-list", "post"): (
        {"patient"},
        lambda c, row: {"patient": c.payload_rows[row].patient.pk},
    ),
    # a patient asks for themselves; staff approve and decline, never ask
    ("authorization-request-list", "post"): (
        {"patient"},
        lambda c, row: {
            "patient": c.payload_rows[row].patient.pk,
            "service_code": c.world.visit.service_code.code,
        },
    ),
    ("episode-list", "post"): (
        {"patient"},
        lambda c, row: {
            "patient": c.payload_rows[row].patient.pk,
            "start_date": c.world.day.isoformat(),
            "diagnoses": ["F84.0"],
        },
    ),
    ("working-hours-list", "post"): (
        {"practitioner"},
        lambda c, row: {
            "practitioner": c.payload_rows[row].practitioner.pk,
            "weekday": 6,
            "start_time": "06:00",
            "end_time": "07:00",
        },
    ),
    ("time-off-list", "post"): (
        {"practitioner"},
        lambda c, row: {
            "practitioner": c.payload_rows[row].practitioner.pk,
            "start": (c.world.at(6) + timedelta(days=3)).isoformat(),
            "end": (c.world.at(7) + timedelta(days=3)).isoformat(),
        },
    ),
    ("waitlist-entry-list", "post"): (
        {"patient"},
        lambda c, row: {
            "patient": c.payload_rows[row].patient.pk,
            "practitioner": c.payload_rows[row].practitioner.pk,
            "appointment_type": c.world.visit.pk,
            "earliest_date": c.world.day.isoformat(),
            "latest_date": (c.world.day + timedelta(days=7)).isoformat(),
        },
    ),
    ("calendar-feeds", "post"): (
        {"practitioner"},
        lambda c, row: {"practitioner": c.payload_rows[row].practitioner.pk},
    ),
}
# Bodies of writes to a row named by the URL (parsed before the row is looked up)
BODIES: dict[tuple[str, str], Callable] = {
    ("appointment-reschedule", "post"): lambda c, row: {"start": c.world.at(16).isoformat()},
}
# Lists whose content is checked: route name -> id key
LISTS = {
    "appointment-list": "id",
    "appointment-series-list": "id",
    "working-hours-list": "id",
    "time-off-list": "id",
    "smart-booking-list": "job_id",
    "patient-list": "id",
    "authorization-list": "id",
    "authorization-request-list": "id",
    "my-appointments-list": "id",
    "payment-list": "id",
    "claim-list": "id",
    "episode-list": "id",
    "charge-list": "id",
    "notification-list": "id",
    "webhook-list": "id",
    "webhook-delivery-list": "id",
    "waitlist-entry-list": "id",
    "waitlist-offer-list": "id",
}
# Rows bound by the URL: kwarg -> model (pk: the view's own model)
URL_ROWS = {
    "patient_pk": "practice.patient",
    "patient_id": "practice.patient",
    "line_id": "authorizations.authorizationline",
    "subscription_pk": "webhooks.webhooksubscription",
}
# Where another row's id is refused, not hidden
OUT_REFUSED = {"patient-appointments-list"}


def api_ops() -> list[Op]:
    ops = []
    for pattern, cls, actions in api_views():
        if issubclass(cls, TokenViewBase):
            continue  # signing in: the token endpoints
        kwargs = set(pattern.pattern.regex.groupindex)
        for method, action in actions.items():
            if method == "head":
                continue  # a GET without its body
            view = cls(**getattr(pattern.callback, "initkwargs", {}))
            if action is not None:
                view.action_map, view.action = actions, action
            request = SimpleNamespace(method=method.upper())
            if view_action(request, view) is None:
                continue  # answered 405
            permission = required_permission(request, view)
            name = pattern.name
            model = ""  # the row the URL names, for its scope: a parent's, else the view's own
            if "pk" in kwargs:
                model = view.permission_model
            for kwarg, bound in URL_ROWS.items():
                if kwarg in kwargs:
                    model = bound
            op = Op(
                surface="api",
                label=f"{method.upper()} {name}",
                method=method,
                url=_api_url(name, kwargs, getattr(view, "permission_model", "")),
                permission=permission,
                self_service=view_action(request, view)
                in getattr(view, "self_service_actions", ()),
            )
            if model:
                op.model = model
                op.binding = frozenset(BINDINGS.get(model, ()))
                op.rows = ("in", "out") if model in BINDINGS else ("in",)
                op.out_status = 403 if name in OUT_REFUSED else 404
            if (name, method) in BODIES:
                op.payload = BODIES[(name, method)]
            if (name, method) in PAYLOADS:
                binding, builder = PAYLOADS[(name, method)]
                op.binding, op.rows, op.out_status = frozenset(binding), ("in", "out"), 403
                op.payload = builder
            if method == "get" and name in LISTS:
                op.model = getattr(view, "permission_model", "")
                op.listing = _ids(LISTS[name])
                op.binding = frozenset(BINDINGS.get(op.model, ()))
                op.mine = name == "my-appointments-list"
            ops.append(op)
    return ops


def _api_url(name: str, kwargs: set, model: str) -> Callable[[Clinic, str], str]:
    """The route's path on `row`: `pk` is a row of the view's `model`, the other arguments
    rows of the models URL_ROWS names, all in or all out of scope."""

    def url(c: Clinic, row: str) -> str:
        values = {}
        for kwarg in kwargs:
            bound = URL_ROWS.get(kwarg, model)
            pk = c.rows[bound].get(row, c.rows[bound]["in"])
            values[kwarg] = pk
        if "authorization_id" in kwargs:
            line = c.rows["authorizations.authorizationline"]
            with in_clinic(c.acme):
                values["authorization_id"] = AuthorizationLine.objects.get(
                    pk=line.get(row, line["in"])
                ).authorization_id
        path = reverse(name, urlconf="clinic.urls_tenants", kwargs=values)
        return path + ("?page_size=100" if name in LISTS else "")

    return url


def _is_login(response) -> bool:
    return response.status_code == 302 and "/login/" in response.get("Location", "")


def admin_ops() -> list[Op]:
    ops = []
    stub = SimpleNamespace(user=SimpleNamespace(has_perm=lambda *a: True, is_active=True))
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        label = opts.label_lower
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        binding = frozenset(BINDINGS.get(label, ()))
        view = f"{opts.app_label}.view_{opts.model_name}"
        ops.append(
            Op(
                surface="admin",
                label=f"GET {base}",
                method="get",
                url=lambda c, row, base=base: base,
                permission=view,
                model=label,
                binding=binding,
                listing=(lambda r: {str(o.pk) for o in r.context["cl"].result_list})
                if label in BINDINGS
                else None,
            )
        )
        if model_admin.has_add_permission(stub):
            ops.append(
                Op(
                    surface="admin",
                    label=f"GET {base}add/",
                    method="get",
                    url=lambda c, row, base=base: f"{base}add/",
                    permission=f"{opts.app_label}.add_{opts.model_name}",
                )
            )
        ops.append(
            Op(
                surface="admin",
                label=f"GET {base}<row>/change/",
                method="get",
                url=lambda c, row, base=base, label=label: (
                    f"{base}{c.rows[label].get(row, c.rows[label]['in'])}/change/"
                    if label in c.rows
                    else None  # no such row in the clinic
                ),
                permission=view,
                model=label,
                binding=binding,
                rows=("in", "out") if label in BINDINGS else ("in",),
                out_status=403,
            )
        )
    return ops


def board_ops() -> list[Op]:
    base = "/admin/scheduling/board/"
    ops = [
        Op(
            surface="board",
            label=f"GET {base}",
            method="get",
            url=lambda c, row: f"{base}?date={c.world.day.isoformat()}",
            permission="scheduling.view_appointment",
            model="practice.practitioner",
            binding=frozenset({"practitioner"}),
            listing=lambda r: {str(col["practitioner"].pk) for col in r.context["grid"]["columns"]},
        ),
        Op(
            surface="board",
            label=f"POST {base}book/",
            method="post",
            url=lambda c, row: f"{base}book/",
            permission="scheduling.book_appointment",
            binding=frozenset({"practitioner", "patient"}),
            rows=("in", "out"),
            out_status=403,
            payload=_booking,
        ),
        Op(
            surface="board",
            label=f"GET {base}patients/",
            method="get",
            url=lambda c, row: f"{base}patients/?q=Patient",
            permission="practice.view_patient",
            model="practice.patient",
            binding=frozenset({"patient"}),
            listing=lambda r: {str(p["id"]) for p in r.json()["results"]},
        ),
    ]
    ops.append(
        Op(
            surface="board",
            label=f"POST {base}appointments/<row>/move/",
            method="post",
            url=lambda c, row: f"{base}appointments/{c.rows['scheduling.appointment'][row]}/move/",
            permission="scheduling.book_appointment",
            binding=frozenset({"practitioner", "patient"}),
            rows=("in", "out"),
            payload=lambda c, row: {"start": (c.world.at(16) + timedelta(days=1)).isoformat()},
        )
    )
    ops.append(
        Op(
            surface="board",
            label=f"GET {base}plan/",
            method="get",
            url=lambda c, row: f"{base}plan/",
            permission="scheduling.book_appointment",
        )
    )
    for name, spec in board.ACTIONS.items():
        ops.append(
            Op(
                surface="board",
                label=f"POST {base}appointments/<row>/{name}/",
                method="post",
                url=lambda c, row, name=name: (
                    f"{base}appointments/{c.rows['scheduling.appointment'][row]}/{name}/"
                ),
                permission=spec.permission,
                binding=frozenset({"practitioner", "patient"}),
                rows=("in", "out"),
                payload=lambda c, row: {"reason": "matrix"},
            )
        )
    return ops


def report_ops() -> list[Op]:
    """billing's report pages in the admin (billing.admin.reports)."""
    base = "/admin/billing/reports/"
    return [
        Op(
            surface="admin",
            label=f"GET {base}{name}/",
            method="get",
            url=lambda c, row, name=name: f"{base}{name}/",
            permission="billing.view_claim",
        )
        for name in ("ar-aging", "denials", "underpayments")
    ]


def all_ops() -> list[Op]:
    return api_ops() + admin_ops() + board_ops() + report_ops()


# --- The check -----------------------------------------------------------------------------------

ALLOWED = "allowed"


def expected(role: str, op: Op, row: str) -> str | int:
    """What the table says of `op` on `row` for `role`: ALLOWED, a status, or "login"."""
    if op.permission is None:
        return ALLOWED
    if role == ANON:
        return 401 if op.surface == "api" else "login"
    if op.surface != "api" and role == PA:
        return "login"  # patients are not staff: the admin sends them to sign in
    if op.permission == SIGNED_IN:
        return ALLOWED
    scope = table_scope(role, op.permission, self_service=op.self_service)
    if op.surface == "admin" and scope is None and op.permission.split(".")[1].startswith("view"):
        # the admin shows a model to those who may change it, too
        change = op.permission.replace(".view_", ".change_")
        scope = table_scope(role, change, self_service=False)
    if scope is None:
        return 403
    if row == "out" and _out_of_scope(scope, op.binding):
        return op.out_status
    return ALLOWED


def _out_of_scope(scope: str, binding: frozenset) -> bool:
    """Whether the out row (another practitioner's, another patient's) is outside `scope`:
    OWN reaches through the practitioner or the patient, SELF through the patient."""
    if scope == OWN:
        return bool(binding)
    if scope == SELF:
        return "patient" in binding
    return False


def _request(client, op: Op, clinic: Clinic, row: str):
    url = op.url(clinic, row)
    data = op.payload(clinic, row) if op.payload else {}
    # Every write is undone: the next operation sees the same clinic.
    with transaction.atomic():
        if op.surface == "api":
            body = json.dumps(data)
            response = client.generic(op.method.upper(), url, body, "application/json")
        elif op.method == "get":
            response = client.get(url)
        else:
            response = client.post(url, data)
        transaction.set_rollback(True)
    connection.set_schema_to_public()
    return response


def _answer(response) -> str | int:
    if _is_login(response):
        return "login"
    return response.status_code


def _agrees(want, response, *, row_bound: bool) -> bool:
    got = _answer(response)
    if want == ALLOWED:
        refused = {401, 403, "login"} | ({404} if row_bound else set())
        return got not in refused
    return got == want


def mismatches(clinic: Clinic, clients: dict, roles=ROLES, ops=None) -> list[tuple]:
    """Every (role, operation, row, expected, answered) where the answer disagrees with the
    table."""
    wrong = []
    for op in ops if ops is not None else all_ops():
        for role in roles:
            client = clients["api" if op.surface == "api" else "pages"][role]
            for row in op.rows:
                if op.url(clinic, row) is None:
                    continue
                want = expected(role, op, row)
                response = _request(client, op, clinic, row)
                if not _agrees(want, response, row_bound=op.row_bound):
                    wrong.append((role, op.label, row, want, _answer(response)))
                    continue
                if want == ALLOWED and op.listing is not None and response.status_code == 200:
                    wrong += _list_mismatches(role, op, clinic, response)
    return wrong


def _list_mismatches(role: str, op: Op, clinic: Clinic, response) -> list[tuple]:
    rows = clinic.rows.get(op.model, {})
    if "out" not in rows:
        return []
    listed = op.listing(response)
    scope = table_scope(role, op.permission, self_service=op.self_service)
    if scope is None:  # admin changelists shown for `change`
        scope = table_scope(role, op.permission.replace(".view_", ".change_"), self_service=False)
    wrong = []
    want_in = role in (PR, PA) if op.mine else True
    want_out = not op.mine and not _out_of_scope(scope, op.binding)
    if (str(rows["in"]) in listed) != want_in:
        wrong.append((role, op.label, "lists in", want_in, not want_in))
    if (str(rows["out"]) in listed) != want_out:
        wrong.append((role, op.label, "lists out", want_out, not want_out))
    return wrong


@pytest.fixture
def clients(clinic, client_for):
    return {
        "api": {role: client_for(clinic.acme, clinic.users.get(role)) for role in ROLES},
        "pages": {role: session_client(clinic.acme, clinic.users.get(role)) for role in ROLES},
    }


# --- Tests -------------------------------------------------------------------------------------


def test_the_grants_in_force_are_the_readmes_table(db):
    assert _normal(installed_grants()) == _normal(TABLE)


def test_every_api_view_checks_through_the_one_permission_class():
    views = {cls for _, cls, _ in api_views() if not issubclass(cls, TokenViewBase)}
    assert len(views) > 20
    for cls in views:
        assert cls.permission_classes == [GrantPermission], cls
        public = set(getattr(cls, "public_actions", ()))
        assert getattr(cls, "permission_model", None) or public, cls


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_follows_the_table(role, clinic, clients):
    assert mismatches(clinic, clients, roles=(role,)) == []


def test_the_matrix_reports_a_widened_and_a_narrowed_grant(clinic, clients):
    """Give billers the working hours (the table: "—") and take check-in from the front desk:
    the walk reports both, on the API, the admin and the board, and nothing else."""
    in_force = installed_grants()
    changed = {role: dict(table) for role, table in in_force.items()}
    changed[BI]["scheduling.workinghours"] = Grant(("view",))
    visits = changed[FD]["scheduling.appointment"]
    changed[FD]["scheduling.appointment"] = Grant(
        tuple(a for a in visits.actions if a != "checkin"), visits.scope
    )
    touched = ("scheduling.view_workinghours", "scheduling.checkin_appointment")
    ops = [op for op in all_ops() if op.permission in touched]
    try:
        grants_install(changed)
        wrong = mismatches(clinic, clients, roles=(BI, FD), ops=ops)
    finally:
        grants_install(in_force)
    reported = {(role, label) for role, label, *_ in wrong}
    assert {
        (BI, "GET working-hours-list"),
        (BI, "GET working-hours-detail"),
        (BI, "GET /admin/scheduling/workinghours/"),
        (FD, "POST appointment-check-in"),
        (FD, "POST /admin/scheduling/board/appointments/<row>/check-in/"),
    } <= reported
    assert {role for role, _ in reported} == {BI, FD}
    assert mismatches(clinic, clients, roles=(BI, FD), ops=ops) == []  # restored


# What each operation beyond reading, adding, changing and deleting a row needs: the README's
# words ("book, move, check in, complete, no-show, cancel", "draw units", "ask") as permissions.
ACTIONS = {
    "POST appointment-list": "scheduling.book_appointment",
    "POST appointment-check": "scheduling.book_appointment",
    "POST appointment-reschedule": "scheduling.book_appointment",
    "POST appointment-check-in": "scheduling.checkin_appointment",
    "POST appointment-complete": "scheduling.complete_appointment",
    "POST appointment-no-show": "scheduling.noshow_appointment",
    "POST appointment-cancel": "scheduling.cancel_appointment",
    "GET appointment-ics": "scheduling.view_appointment",
    "POST appointment-series-list": "scheduling.book_appointment",
    "POST appointment-series-cancel": "scheduling.cancel_appointment",
    "POST smart-booking-list": "scheduling.book_appointment",
    "POST smart-booking-cancel": "scheduling.book_appointment",
    "GET patient-appointments-list": "scheduling.view_appointment",
    "GET my-appointments-list": "scheduling.view_appointment",
    "POST line-reserve": "authorizations.change_authorizationline",
    "POST line-release": "authorizations.change_authorizationline",
    "POST line-consume": "authorizations.change_authorizationline",
    "POST calendar-feeds": "scheduling.add_calendarfeed",
    "GET patient-export": "practice.export_patient",
    "POST payment-refund": "billing.change_payment",
    "GET patient-balance": "billing.view_ledgerentry",
    "GET my-balance": "billing.view_ledgerentry",
    "POST patient-balance-apply-credit": "billing.add_ledgerentry",
    "POST transfer": "billing.add_ledgerentry",
    "POST write-off": "billing.add_ledgerentry",
    "POST waitlist-offer-accept": "waitlist.accept_waitlistoffer",
    "POST waitlist-offer-decline": "waitlist.accept_waitlistoffer",
    # billing's reports: the roles that see the revenue cycle whole (view on claims)
    "GET report-ar-aging": "billing.view_claim",
    "GET report-denials": "billing.view_claim",
    "GET report-underpayments": "billing.view_claim",
    # billing's claims: sending, replacing and voiding is `submit`; scrub, appeal and
    # acknowledgements change claims
    **{f"POST claim-{verb}": "billing.submit_claim" for verb in ("submit", "replace", "void")},
    "POST claim-submit-many": "billing.submit_claim",
    "POST claim-scrub": "billing.change_claim",
    "POST claim-appeal": "billing.change_claim",
    "GET claim-x12": "billing.view_claim",
    "POST acknowledgement-upload": "billing.change_claim",
    "POST charge-void": "billing.change_charge",
    "POST charge-run": "billing.add_charge",
    "GET charge-unbilled": "billing.view_charge",
    # the queue through the API: approve (creates the authorization) or decline
    "POST authorization-request-approve": "authorizations.change_authorizationrequest",
    "POST authorization-request-decline": "authorizations.change_authorizationrequest",
    # webhooks: a delivery sent again
    "POST webhook-delivery-replay": "webhooks.replay_webhookdelivery",
    # API clients: revoking and rotating a secret change the client; usage is its own right
    "POST api-client-revoke": "integrations.change_apiclient",
    "POST api-client-rotate-secret": "integrations.change_apiclient",
    "GET usage": "integrations.usage_apiclient",
    **{
        f"POST {name}-{verb}": f"practice.change_{model}"
        for name, model in (
            ("practitioner", "practitioner"),
            ("location", "location"),
            ("specialty", "specialty"),
            ("patient", "patient"),
            ("coverage", "coverage"),
            ("payer", "payer"),
            ("service-code", "servicecode"),
        )
        for verb in ("deactivate", "reactivate")
    },  # fmt: skip
}
STANDARD = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) [a-z-]+-(list|detail)$")


def test_every_action_needs_the_permission_the_table_names():
    """A view may not name its own permission for an action: each one beyond the standard
    reads and writes is pinned here, so a new action must say what it needs."""
    declared = {op.label: op.permission for op in api_ops()}
    assert {label: declared.get(label) for label in ACTIONS} == ACTIONS
    for label, permission in declared.items():
        if label not in ACTIONS and permission not in (None, SIGNED_IN):
            assert STANDARD.match(label), f"{label} ({permission}): pin it in ACTIONS"


def test_operations_are_walked_on_every_surface():
    ops = all_ops()
    labels = {op.label for op in ops}
    assert {
        "POST appointment-cancel",
        "POST appointment-reschedule",
        "DELETE time-off-detail",
        "POST line-reserve",
        "GET /admin/scheduling/timeoff/",
        "POST /admin/scheduling/board/book/",
        "GET /admin/billing/reports/ar-aging/",
    } <= labels
    assert len([op for op in ops if op.surface == "api"]) > 80, sorted(labels)
    named = re.compile(r"^[a-z_]+\.[a-z_]+$")
    assert all(op.permission in (None, SIGNED_IN) or named.match(op.permission) for op in ops)
