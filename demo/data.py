"""The two demo clinics `make run` loads once. Slugs and logins are fixed (README lists them)."""

from dataclasses import dataclass, field

from django.conf import settings
from django_tenants.utils import schema_context

from accounts.models import User
from accounts.services import user_create
from tenants.models import Clinic
from tenants.services import ClinicAdminSpec, clinic_create, clinic_host

from .billing import billing_seed
from .notifications import notifications_seed
from .practice import practice_seed
from .schedule import schedule_seed

DEMO_PASSWORD = "clinic-demo-pass"
PLATFORM_ADMIN = "operator@platform.test"


@dataclass(frozen=True)
class DemoClinic:
    slug: str
    name: str
    timezone: str
    staff: dict[str, tuple[str, str]] = field(default_factory=dict)  # email -> (name, role)


DEMO_CLINICS = (
    DemoClinic(
        slug="acme",
        name="Acme Therapy",
        timezone="America/New_York",
        staff={
            "frontdesk@acme.test": ("Fran Desk", "front_desk"),
            "bcba@acme.test": ("Dr. Maya Lopez", "practitioner"),
            "rbt@acme.test": ("Sam Rivera", "practitioner"),
            "biller@acme.test": ("Bill Ledger", "biller"),
            "integrator@acme.test": ("EHR Bridge", "integrator"),
            "patient@acme.test": ("Pat Jones", "patient"),
        },
    ),
    DemoClinic(
        slug="liffey",
        name="Liffey Heart Clinic",
        timezone="Europe/Dublin",
        staff={
            "frontdesk@liffey.test": ("Aoife Byrne", "front_desk"),
            "cardio@liffey.test": ("Dr. Cian Murphy", "practitioner"),
            "biller@liffey.test": ("Niamh Kelly", "biller"),
            "patient@liffey.test": ("Sean Walsh", "patient"),
        },
    ),
)


def seed_demo() -> list[str]:
    """Create whatever part of the demo is missing; returns lines to print."""
    lines = []
    with schema_context("public"):
        if not User.objects.filter(email=PLATFORM_ADMIN).exists():
            User.objects.create_superuser(PLATFORM_ADMIN, DEMO_PASSWORD, full_name="Operator")
    port = settings.CLINIC_HTTP_PORT
    lines.append(f"Platform admin: http://{settings.CLINIC_BASE_DOMAIN}:{port}/admin/")
    lines.append(f"    {PLATFORM_ADMIN} / {DEMO_PASSWORD}")
    for demo in DEMO_CLINICS:
        admin_email = f"admin@{demo.slug}.test"
        clinic = Clinic.objects.filter(slug=demo.slug).first()
        if clinic is None:
            clinic = clinic_create(
                slug=demo.slug,
                name=demo.name,
                timezone=demo.timezone,
                admin=ClinicAdminSpec(email=admin_email, password=DEMO_PASSWORD),
            )
        with schema_context(clinic.schema_name):
            for email, (name, role) in demo.staff.items():
                if not User.objects.filter(email=email).exists():
                    user_create(email=email, password=DEMO_PASSWORD, full_name=name, roles=[role])
            directory = practice_seed(demo.slug)
            schedule = schedule_seed(demo.slug)
            money = billing_seed(demo.slug)
            messages = notifications_seed(demo.slug)
        base = f"http://{clinic_host(demo.slug)}:{port}"
        lines.append(f"{demo.name} ({demo.timezone}): {base}/  admin {base}/admin/")
        lines.append(
            f"    schedule board {base}/admin/scheduling/board/ ({schedule['appointments']} "
            f"appointments, {schedule['authorizations']} authorizations)"
        )
        lines.append(
            f"    billing: {money['charges']} charges, {money['claims']} claims; A/R "
            f"{base}/admin/billing/reports/ar-aging/"
        )
        lines.append(
            f"    notifications: reminders 48 h (email) and 2 h (SMS) before; {messages['sent']} "
            f"sent, {messages['pending']} pending {base}/admin/notifications/notification/"
        )
        lines.append(f"    API docs {base}/api/docs/  health {base}/health/")
        lines.append(
            f"    {directory['practitioners']} practitioners, {directory['patients']} patients, "
            f"{directory['coverages']} coverages, {schedule['appointments']} appointments; "
            f"search {base}/api/v1/practitioners/?q=..."
        )
        lines.append(
            f"    {admin_email} (clinic_admin) and ",
        )
        lines[-1] += ", ".join(f"{email} ({role})" for email, (_, role) in demo.staff.items())
        lines.append(f"    password for every demo login: {DEMO_PASSWORD}")
    return lines
