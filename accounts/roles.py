"""The clinic roles, as Django groups with model permissions.

Each app adds its models' permissions here as it lands; `roles_sync` creates or updates the
groups in the current schema and ignores permissions whose models are not installed.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

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

# role -> {"app_label.model": actions}
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    CLINIC_ADMIN: {
        "accounts.user": ALL,
        "auth.group": VIEW,
    },
    FRONT_DESK: {
        "accounts.user": VIEW,
    },
    PRACTITIONER: {},
    BILLER: {},
    INTEGRATOR: {},
    PATIENT: {},
}


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the role groups in the current schema and set exactly their permissions.

    Idempotent; returns the number of permissions per role.
    """
    counts: dict[str, int] = {}
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        query = Q(pk__in=[])
        for model_label, actions in grants.items():
            app_label, model = model_label.split(".")
            codenames = [f"{action}_{model}" for action in actions]
            query |= Q(content_type__app_label=app_label, codename__in=codenames)
        permissions = list(Permission.objects.filter(query))
        group.permissions.set(permissions)
        counts[role] = len(permissions)
    return counts
