"""Who may do what in the practice API.

Staff access comes from `accounts.roles.ROLE_PERMISSIONS` through `RoleModelPermission` (the
same table the admin's role groups are built from). Patients hold no model permission; these
classes let them reach their own records, and the views' querysets hold nothing else.
"""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from clinic.permissions import PATIENT, user_roles


class OwnPatientRecord(BasePermission):
    """A patient may list, read and update their own patient record (the view's queryset
    holds only it: another patient's id is a 404, and nothing is written)."""

    actions = frozenset({"list", "retrieve", "update", "partial_update", "metadata"})

    def has_permission(self, request: Request, view) -> bool:
        return PATIENT in user_roles(request.user) and view.action in self.actions


class OwnPatientCoverage(OwnPatientRecord):
    """A patient may read the coverage on their own record."""

    actions = frozenset({"list", "retrieve", "metadata"})
