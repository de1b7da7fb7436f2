"""The clinic roles, as Django groups with model permissions.

Each app adds its models' permissions here as it lands; `roles_sync` creates or updates the
groups in the current schema and ignores permissions whose models are not installed.
"""

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from clinic.permissions import (
    BILLER,
    CLINIC_ADMIN,
    FRONT_DESK,
    INTEGRATOR,
    PATIENT,
    PRACTITIONER,
)

ALL = ("add", "change", "delete", "view")
EDIT = ("add", "change", "view")
VIEW = ("view",)

# Nothing with history is hard-deleted: practice records are deactivated, so no role holds
# `delete` on them.
_DIRECTORY_VIEW = {
    "practice.practitioner": VIEW,
    "practice.location": VIEW,
    "practice.specialty": VIEW,
}
_FRONT_DESK = {
    **_DIRECTORY_VIEW,
    "practice.patient": EDIT,
    "practice.coverage": EDIT,
    "practice.payer": VIEW,
    "practice.servicecode": VIEW,
}

# The appointment's own permissions (scheduling.Appointment.Meta.permissions) name what the
# schedule board and the bulk actions may do; "change" only edits an appointment's notes.
APPOINTMENT_DESK = ("view", "change", "book", "checkin", "complete", "noshow", "cancel")

_SCHEDULE_DESK = {
    "scheduling.appointment": APPOINTMENT_DESK,  # booked through the services, not the form
    "scheduling.appointmenttype": VIEW,
    "scheduling.workinghours": VIEW,  # hours are the clinic admin's
    "scheduling.timeoff": EDIT,  # the desk records a practitioner's sick call
    "scheduling.appointmentseries": VIEW,
    "scheduling.smartbookingjob": VIEW,
    "authorizations.authorization": EDIT,
    "authorizations.authorizationline": EDIT,
    "authorizations.unitreservation": VIEW,
}
_BILLING_VIEW = {
    "scheduling.appointment": VIEW,
    "scheduling.appointmenttype": VIEW,
    "authorizations.authorization": VIEW,
    "authorizations.authorizationline": VIEW,
    "authorizations.unitreservation": VIEW,
}

# role -> {"app_label.model": actions}. The admin (through the role groups) and the API
# (through `roles_allow`) both read this one table. Practitioners' rows are further narrowed
# to their own schedule and patients by the admin's querysets (scheduling.selectors).
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    CLINIC_ADMIN: {
        "accounts.user": ALL,  # the admin still never deletes a user: deactivate instead
        "auth.group": VIEW,
        "practice.location": EDIT,
        "practice.specialty": EDIT,
        "practice.practitioner": EDIT,
        "practice.payer": EDIT,
        "practice.servicecode": EDIT,
        "practice.patient": EDIT,
        "practice.coverage": EDIT,
        "practice.clinicsettings": ("change", "view"),
        **_SCHEDULE_DESK,
        "scheduling.appointmenttype": EDIT,
        "scheduling.workinghours": EDIT,
        "scheduling.calendarfeed": EDIT,
    },
    FRONT_DESK: {
        "accounts.user": VIEW,  # to link a patient record to its portal account
        **_FRONT_DESK,
        **_SCHEDULE_DESK,
    },
    PRACTITIONER: {
        **_DIRECTORY_VIEW,
        "practice.patient": VIEW,
        "scheduling.appointment": ("view", "change", "complete"),
        "scheduling.appointmenttype": VIEW,
        "scheduling.workinghours": VIEW,
        "scheduling.timeoff": EDIT,
        "authorizations.authorization": VIEW,
        "authorizations.authorizationline": VIEW,
    },
    BILLER: {
        **_DIRECTORY_VIEW,
        "practice.patient": VIEW,
        "practice.coverage": VIEW,
        "practice.payer": VIEW,
        "practice.servicecode": VIEW,
        **_BILLING_VIEW,
    },
    # Integrators (EHRs, billing services) do through the API what the front desk does.
    INTEGRATOR: {**_FRONT_DESK, **_SCHEDULE_DESK},
    # Patients hold no model permission: they reach their own records only (see practice.api).
    PATIENT: {},
}


def roles_allow(roles: Iterable[str], model_label: str, action: str) -> bool:
    """Whether any of `roles` grants `action` ("view", "add", "change", "delete") on
    `model_label` ("practice.patient"). Pure Python on the table above: no query."""
    return any(action in ROLE_PERMISSIONS.get(role, {}).get(model_label, ()) for role in roles)


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the role groups in the current schema and set exactly their permissions.

    Idempotent and cheap when nothing changed (three queries), so `migrate_schemas` runs it in
    every clinic; returns the number of permissions per role.
    """
    wanted: dict[str, set[int]] = {}
    permissions = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for role, grants in ROLE_PERMISSIONS.items():
        wanted[role] = set()
        for model_label, actions in grants.items():
            app_label, model = model_label.split(".")
            for action in actions:
                pk = permissions.get((app_label, f"{action}_{model}"))
                if pk is not None:  # models of apps not installed are skipped
                    wanted[role].add(pk)
    groups = {group.name: group for group in Group.objects.filter(name__in=list(wanted))}
    for role in wanted:
        if role not in groups:
            groups[role] = Group.objects.create(name=role)
    through = Group.permissions.through
    current: dict[int, set[int]] = {group.pk: set() for group in groups.values()}
    for group_id, permission_id in through.objects.filter(group_id__in=list(current)).values_list(
        "group_id", "permission_id"
    ):
        current[group_id].add(permission_id)
    for role, permission_ids in wanted.items():
        group = groups[role]
        if current[group.pk] != permission_ids:
            group.permissions.set(permission_ids)
    return {role: len(permission_ids) for role, permission_ids in wanted.items()}
