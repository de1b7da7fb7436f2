"""billing's grants: fees, episodes, charges, claims, remittances, payments and the money
ledger (see clinic.permissions for the format; accounts.roles merges every app's). The README's
role table says the same in words.

Billers run the revenue cycle; the front desk takes payments and copays and sees balances, but
never posts a remittance or touches a claim; a practitioner keeps the diagnoses of the episodes
of the patients they see; integrators read; a patient sees their own balance and statements and
may pay online. No-show and late-cancel fees are charged by the services; billers, clinic
admins and the front desk waive them with a reason, and clinic admins and billers keep the
policy. The ledger is written by the services only (append-only), so no role `change`s
or `delete`s it.
"""

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

VIEW = ("view",)
EDIT = ("add", "change", "view")

_REVENUE_CYCLE = {
    "billing.billingprofile": ("change", "view"),
    "billing.payerrules": EDIT,
    "billing.feeschedule": EDIT,
    "billing.fee": ("add", "change", "delete", "view"),
    "billing.diagnosiscode": VIEW,
    "billing.episode": EDIT,
    "billing.episodediagnosis": ("add", "change", "delete", "view"),
    "billing.charge": EDIT,  # made from visits by the services; `change` voids
    "billing.submission": VIEW,
    "billing.claim": (*EDIT, "submit"),
    "billing.claimline": VIEW,
    "billing.remittance": ("add", "view"),  # add: upload and post an 835
    "billing.remittanceclaim": VIEW,
    "billing.payment": EDIT,  # change: refund
    "billing.ledgerentry": ("add", "view"),  # add: transfers, write-offs, applying credit
    "billing.provideradjustment": VIEW,  # PLB: posted from 835s, never by hand
    # No-show and late-cancel fees: the policy, and the fees it charged (waive: a reversal)
    "billing.missedvisitpolicy": ("add", "change", "delete", "view"),
    "billing.missedvisitfee": ("view", "waive"),
}

GRANTS = {
    CLINIC_ADMIN: _REVENUE_CYCLE,
    BILLER: _REVENUE_CYCLE,
    FRONT_DESK: {
        "billing.feeschedule": VIEW,
        "billing.fee": VIEW,
        "billing.episode": EDIT,  # referrals and coverage captured at intake
        "billing.episodediagnosis": VIEW,
        "billing.charge": VIEW,
        "billing.payment": ("add", "view"),  # payments and copays at the desk
        "billing.ledgerentry": VIEW,  # balances
        "billing.missedvisitpolicy": VIEW,
        "billing.missedvisitfee": ("view", "waive"),  # a patient's fee waived at the desk
    },
    INTEGRATOR: {
        label: VIEW
        for label in (
            "billing.feeschedule",
            "billing.fee",
            "billing.episode",
            "billing.episodediagnosis",
            "billing.charge",
            "billing.claim",
            "billing.claimline",
            "billing.payment",
            "billing.ledgerentry",
            "billing.missedvisitpolicy",
            "billing.missedvisitfee",
        )
    },
    PRACTITIONER: {  # the episodes and diagnoses of the patients they see
        "billing.episode": Grant(EDIT, OWN),
        "billing.episodediagnosis": Grant(("add", "change", "delete", "view"), OWN),
        "billing.diagnosiscode": VIEW,
        "billing.charge": Grant(VIEW, OWN),
    },
    PATIENT: {  # their own balance, statements and online payments
        "billing.charge": Grant(VIEW, SELF),
        "billing.payment": Grant(("add", "view"), SELF),
        "billing.ledgerentry": Grant(VIEW, SELF),
        "billing.missedvisitfee": Grant(VIEW, SELF),
    },
}
