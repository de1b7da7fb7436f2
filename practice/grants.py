"""practice's grants: the directory, patients and their coverage, payers, service codes and
the clinic's settings (see clinic.permissions for the format; accounts.roles merges every
app's). The README's role table says the same in words."""

from clinic.permissions import (
    BILLER,
    CLINIC_ADMIN,
    FRONT_DESK,
    INTEGRATOR,
    OWN,
    PATIENT,
    PRACTITIONER,
    SELF,
    Grant,
)

# Nothing with history is hard-deleted: practice records are deactivated (a change), so no
# role holds `delete` on them.
EDIT = ("add", "change", "view")
VIEW = ("view",)

_DIRECTORY = {
    "practice.practitioner": VIEW,
    "practice.location": VIEW,
    "practice.specialty": VIEW,
}
_DESK = {
    **_DIRECTORY,
    "practice.patient": EDIT,
    "practice.coverage": EDIT,
    "practice.payer": VIEW,
    "practice.servicecode": VIEW,
}

GRANTS = {
    CLINIC_ADMIN: {
        "practice.location": EDIT,
        "practice.specialty": EDIT,
        "practice.practitioner": EDIT,
        "practice.payer": EDIT,
        "practice.servicecode": EDIT,
        "practice.patient": EDIT,
        "practice.coverage": EDIT,
        "practice.clinicsettings": ("change", "view"),
    },
    FRONT_DESK: _DESK,
    # Integrators (EHRs, billing services) do through the API what the front desk does.
    INTEGRATOR: _DESK,
    PRACTITIONER: {
        **_DIRECTORY,
        "practice.patient": Grant(VIEW, OWN),  # the patients they see
    },
    BILLER: {
        **_DIRECTORY,
        "practice.patient": VIEW,
        "practice.coverage": VIEW,
        "practice.payer": VIEW,
        "practice.servicecode": VIEW,
    },
    # A patient reads their own record and changes its contact details and preferences (the
    # API's self-service fields), and reads their coverage.
    PATIENT: {
        "practice.patient": Grant(("view", "change"), SELF),
        "practice.coverage": Grant(VIEW, SELF),
    },
}
