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
# A patient's data rights (practice/rights.py): the desk hands a patient a copy of their data
# (export); only the clinic admin, who answers for the clinic's retention duties, erases.
PATIENT_DESK = (*EDIT, "export")

_DIRECTORY = {
    "practice.practitioner": VIEW,
    "practice.location": VIEW,
    "practice.specialty": VIEW,
    "practice.condition": VIEW,  # what the search understands: conditions and their words
}
_DESK = {
    **_DIRECTORY,
    "practice.patient": PATIENT_DESK,
    "practice.coverage": EDIT,
    "practice.payer": VIEW,
    "practice.servicecode": VIEW,
    "practice.erasurerequest": VIEW,  # what patients asked, for the clinic admin to decide
    # intake: guardians / responsible parties, signed consents (never edited), their texts
    "practice.guardian": EDIT,
    "practice.patientconsent": VIEW,
    "practice.consenttext": VIEW,
}

GRANTS = {
    CLINIC_ADMIN: {
        "practice.location": EDIT,
        "practice.specialty": EDIT,
        "practice.condition": EDIT,
        "practice.practitioner": EDIT,
        "practice.payer": EDIT,
        "practice.servicecode": EDIT,
        "practice.patient": (*PATIENT_DESK, "erase"),
        "practice.coverage": EDIT,
        "practice.clinicsettings": ("change", "view"),
        "practice.erasurerequest": VIEW,  # carried out or declined on the patient's page
        "practice.guardian": EDIT,
        "practice.patientconsent": VIEW,
        "practice.consenttext": EDIT,  # a new wording is a new version
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
        "practice.guardian": VIEW,  # the responsible party statements go to
        "practice.patientconsent": VIEW,  # financial responsibility signed
    },
    # A patient reads their own record and changes its contact details and preferences (the
    # API's self-service fields), downloads a copy of their data, and reads their coverage.
    PATIENT: {
        "practice.patient": Grant(("view", "change", "export"), SELF),
        "practice.coverage": Grant(VIEW, SELF),
    },
}
