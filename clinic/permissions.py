"""Role-based DRF permission classes reused by every app.

Roles are Django groups created in each clinic at provisioning (accounts.roles).
"""

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
