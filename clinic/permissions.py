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
