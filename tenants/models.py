import functools
import logging
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django_tenants.models import DomainMixin, TenantMixin

logger = logging.getLogger(__name__)

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
RESERVED_SLUGS = frozenset(
    {"www", "api", "admin", "public", "static", "media", "platform", "template", "ws", "health"}
)


@functools.cache
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # reads the zone files: ~30 ms


def validate_timezone(value: str) -> None:
    if value not in _iana_zones():
        raise ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")


def validate_slug(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(f"'{value}' is reserved.", code="reserved_slug")


class Clinic(TenantMixin):
    """A clinic (tenant). Its data lives in the PostgreSQL schema `schema_name`.

    The platform itself is the one row whose schema is `public`.
    """

    slug = models.CharField(
        max_length=40,
        unique=True,
        validators=[
            RegexValidator(SLUG_PATTERN, "Lowercase letters, digits and '-'."),
            validate_slug,
        ],
    )
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Why the platform suspended the clinic (its staff read it), and when.
    suspended_reason = models.CharField(max_length=300, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    # A clinic an operator creates opens its patient pages when its own admin publishes them.
    published_at = models.DateTimeField(null=True, blank=True)
    # What migrate_schemas last found or brought this clinic's schema up to: the digest of the
    # code's migrations and the roles' grants (tenants.services.schema_state). A clinic at the
    # current state is not visited by the next no-op upgrade; "" (a new or restored clinic, or
    # one a targeted migrate touched) is checked by the next.
    schema_state = models.CharField(max_length=32, blank=True, editable=False)

    # Schemas are created by tenants.services.clinic_create (cloned from the template).
    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def is_platform(self) -> bool:
        return self.schema_name == "public"

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """Take a copy of the template from the warm pool (`services.schema_pool_take`), or
        clone the template schema (django-tenants calls this from save()).

        tenants.clone copies the template at a cost that does not grow with the number of
        clinics; django-tenants' own clone function takes seconds once there are hundreds. A
        template holding objects that clone does not copy falls back to django-tenants. Then
        only migrations the template lacked are run — for real, not faked. On Citus there is no
        fallback (it would leave the tables on the coordinator): CloneUnsupported.
        """
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django_tenants.utils import schema_exists

        from .clone import CloneUnsupported, citus_installed, schema_clone
        from .selectors import schemas_with_pending_migrations
        from .services import schema_pool_take

        template = settings.TENANT_BASE_SCHEMA
        if not sync_schema or not schema_exists(template):
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        try:
            if not schema_pool_take(self.schema_name):  # a copy made ready, else a clone now
                schema_clone(source=template, dest=self.schema_name)
        except CloneUnsupported as exc:
            if citus_installed():
                # django-tenants' clone_schema() leaves the tables on the coordinator there,
                # silently: not a clinic of the sharded database.
                raise CloneUnsupported(
                    f"{exc}: on Citus a clinic is provisioned by tenants.clone only (make the "
                    "template clonable)"
                ) from exc
            logger.warning("cloning with django-tenants' clone_schema: %s", exc)
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if schemas_with_pending_migrations([self.schema_name]):
            call_command(
                "migrate_schemas",
                tenant=True,
                schema_name=self.schema_name,
                interactive=False,
                verbosity=verbosity,
            )
        connection.set_schema_to_public()
        return True


class Domain(DomainMixin):
    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class WorkDue(models.Model):
    """When the beat next looks at a clinic for one kind of background work: its notifications
    to send, webhooks to deliver, smart-booking jobs that may be stuck, waitlist holds to
    expire, next-available rows the clock overtakes (`WORK_KINDS`). One row per clinic and
    kind, kept by the database and the sweeps:

    - a statement that writes a row of that kind in a sweepable state (a pending notification,
      a queued job...; for next_available, any row of the tables it is computed from) marks its
      clinic due now (`due_at` = 'epoch'), through a trigger on the clinic's table
      (`public.clinic_work_changed()`, migrations 0004 and 0005);
    - the sweep that visits the clinic settles the row to the time its rows are next due, or
      removes it when none can be (`tenants.services.work_due_settle`).

    The beat reads the due rows (one indexed query) instead of asking every clinic's tables:
    its minute costs the clinics with work, not the number of clinics. `due_at` is compared,
    never shown: the ORM does not read it."""

    schema_name = models.CharField(max_length=63)
    kind = models.CharField(max_length=32)
    due_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["schema_name", "kind"], name="work_due_one_per_kind")
        ]
        indexes = [models.Index(fields=["kind", "due_at"], name="work_due_by_kind")]

    def __str__(self) -> str:
        return f"{self.kind} in {self.schema_name}"


@receiver(post_delete, sender=Clinic)
def _work_due_forget(sender, instance: Clinic, **kwargs) -> None:
    WorkDue.objects.filter(schema_name=instance.schema_name).delete()


# The kinds of work the beat sweeps clinic by clinic, with the states a row is swept in (what
# the trigger of its table passes to public.clinic_work_changed()). No states: any row written
# (next_available: the practitioners, their hours, types and next-available rows).
WORK_KINDS = {
    "notifications": ("pending", "sending"),
    "webhooks": ("pending", "sending"),
    "smart_bookings": ("queued", "running"),
    "waitlist_offers": ("held",),
    "next_available": (),
}


def work_due_triggers(table: str, kind: str, *states: str) -> tuple[str, str]:
    """The SQL that creates the triggers by which `table` marks its clinic due for the beat's
    sweep of `kind` when a statement writes a row in one of `states`, or any row if none are
    given (AFTER INSERT and AFTER UPDATE, once per statement: a transition table is for one
    event), and the SQL that drops them. For the clinic apps' migrations; the function they
    call is migration 0004's, as 0005 left it."""
    arguments = ", ".join(f"'{value}'" for value in (kind, *states))
    create = "".join(
        f"CREATE TRIGGER work_due_{event.lower()} AFTER {event} ON {table} "
        f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT "
        f"EXECUTE FUNCTION public.clinic_work_changed({arguments});\n"
        for event in ("INSERT", "UPDATE")
    )
    drop = f"DROP TRIGGER work_due_insert ON {table}; DROP TRIGGER work_due_update ON {table};"
    return create, drop
