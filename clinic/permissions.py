"""Role-based DRF permission classes reused by every app.

Roles are Django groups created in each clinic at provisioning (accounts.roles). Each app's
grants (`<app>/grants.py`), merged by accounts when Django starts, are installed here
(`grants_install`): `permission_scopes` and `role_permissions` read them without importing any
app.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

CLINIC_ADMIN = "clinic_admin"
FRONT_DESK = "front_desk"
PRACTITIONER = "practitioner"
BILLER = "biller"
PATIENT = "patient"
INTEGRATOR = "integrator"
ALL_ROLES = (CLINIC_ADMIN, FRONT_DESK, PRACTITIONER, BILLER, PATIENT, INTEGRATOR)
STAFF_ROLES = frozenset({CLINIC_ADMIN, FRONT_DESK, PRACTITIONER, BILLER, INTEGRATOR})

# The rows a grant reaches.
ALL = "all"  # every row of the clinic
OWN = "own"  # a practitioner's: their own column (visits, hours, time off...) and the patients
#              they see, with those patients' records
SELF = "self"  # a patient's: their own patient record and what hangs off it (visits, jobs...)
SCOPES = (ALL, OWN, SELF)


@dataclass(frozen=True)
class Grant:
    """Permission names on one model, reaching the rows of `scope`."""

    actions: tuple[str, ...]
    scope: str = ALL

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ImproperlyConfigured(f"Unknown row scope {self.scope!r}.")


# The installed grants: role -> "app_label.model" -> Grant, and the same by permission:
# role -> "app_label.codename" -> scope.
_grants: dict[str, dict[str, Grant]] = {}
_scopes: dict[str, dict[str, str]] = {}


def grants_install(grants: Mapping[str, Mapping[str, Grant]]) -> None:
    """Make `grants` (role -> "app_label.model" -> Grant) the grants in force, replacing the
    ones before. accounts installs the merged grants of every app when Django starts."""
    scopes: dict[str, dict[str, str]] = {}
    for role, models in grants.items():
        by_permission = scopes.setdefault(role, {})
        for label, grant in models.items():
            app_label, model = label.split(".")
            for action in grant.actions:
                by_permission[f"{app_label}.{action}_{model}"] = grant.scope
    _grants.clear()
    _grants.update({role: dict(models) for role, models in grants.items()})
    _scopes.clear()
    _scopes.update(scopes)


def installed_grants() -> dict[str, dict[str, Grant]]:
    """A copy of the grants in force: role -> "app_label.model" -> Grant."""
    return {role: dict(models) for role, models in _grants.items()}


def role_permissions(roles) -> set[str]:
    """The model permissions ("app_label.codename") that `roles` hold: their grants in the
    clinic's rows (ALL) or in their own (OWN), not the self-service ones (SELF)."""
    return {
        permission
        for role in roles
        for permission, scope in _scopes.get(role, {}).items()
        if scope != SELF
    }


def permission_scopes(user, permission: str) -> frozenset[str]:
    """The row scopes in which `user` holds `permission` ("app_label.codename"): {ALL} when
    any of their roles reaches every row, otherwise the scopes of the roles that grant it
    (OWN, SELF), empty when none does. Pure Python over the user's role names."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return frozenset()
    if user.is_superuser:
        return frozenset({ALL})
    found = {_scopes.get(role, {}).get(permission) for role in user.roles}
    found.discard(None)
    return frozenset({ALL}) if ALL in found else frozenset(found)


def user_roles(user) -> frozenset[str]:
    return user.roles if getattr(user, "is_authenticated", False) else frozenset()


class HasRole(BasePermission):
    """Allows users holding any of `roles`. Subclass or use `has_role(...)`."""

    roles: frozenset[str] = frozenset()
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view) -> bool:
        return bool(user_roles(request.user) & self.roles)


def has_role(*roles: str) -> type[HasRole]:
    return type(f"HasRole_{'_'.join(roles)}", (HasRole,), {"roles": frozenset(roles)})


class IsClinicAdmin(HasRole):
    roles = frozenset({CLINIC_ADMIN})


class IsStaff(HasRole):
    """Anyone working for the clinic or integrating with it (not patients)."""

    roles = STAFF_ROLES


class IsPatient(HasRole):
    roles = frozenset({PATIENT})


class ReadOnlyOrStaff(BasePermission):
    """Reads for any signed-in clinic user; writes for staff."""

    def has_permission(self, request: Request, view) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return bool(user_roles(request.user) & STAFF_ROLES)


class RoleModelPermission(BasePermission):
    """Allows a view's action when one of the user's roles grants the model permission it
    needs in `accounts.roles.ROLE_PERMISSIONS` (the table the admin's role groups come from).

    The view names its model (`permission_model = "practice.patient"`); list and retrieve
    need `view`, create needs `add`, everything else that writes needs `change`. A view may
    override `required_action(request)`. With `public_read = True` reads are open to everyone,
    anonymous portal visitors included.
    """

    ACTIONS = {"list": "view", "retrieve": "view", "metadata": "view", "create": "add"}
    SAFE_ACTIONS = frozenset({"list", "retrieve", "metadata"})

    def has_permission(self, request: Request, view) -> bool:
        from accounts.roles import roles_allow

        action = getattr(view, "action", None)
        if action is None:
            return True  # a method the view does not route: it answers 405
        if getattr(view, "public_read", False) and action in self.SAFE_ACTIONS:
            return True
        required = view.required_action(request) if hasattr(view, "required_action") else None
        required = required or self.ACTIONS.get(action, "change")
        return roles_allow(user_roles(request.user), view.permission_model, required)
