"""Field-level privacy: what staff write about a record stays with staff.

A serializer names its staff-only fields once (`staff_only_fields`, on the class); whoever reads
the representation without the model's staff `view` permission (a patient, through the API's
self-service actions: patients hold no model permission, see clinic.permissions) gets it
without them. One place, so no view has to remember it.
"""

from typing import Any, ClassVar

from rest_framework.request import Request


def reads_as_staff(request: Request | None, model) -> bool:
    """Whether the user of `request` holds the staff permission to view `model`'s rows (in
    any scope but a patient's own). Without a request (a serializer given no context) the
    answer is no: a forgotten context hides staff fields rather than shows them."""
    if request is None:
        return False
    meta = model._meta
    return bool(request.user.has_perm(f"{meta.app_label}.view_{meta.model_name}"))


class StaffOnlyFieldsMixin:
    """Drops `staff_only_fields` from the representation for a reader who is not staff."""

    staff_only_fields: ClassVar[tuple[str, ...]] = ()

    def to_representation(self, instance) -> dict[str, Any]:
        data = super().to_representation(instance)  # type: ignore[misc]
        if self.staff_only_fields and not reads_as_staff(
            self.context.get("request"),  # type: ignore[attr-defined]
            self.Meta.model,  # type: ignore[attr-defined]
        ):
            for name in self.staff_only_fields:
                data.pop(name, None)
        return data
