"""Writes to a clinic's master data. One function per action, each owning its transaction.

Every write validates the whole row with `full_clean()` (field validators, `clean()`, unique
and check constraints), so the API, the admin, the demo loader and later apps refuse the same
bad input with the same field-named errors. The database constraints stay the guarantee: a
write that loses a race against them is turned into the same `ValidationError`, never a 500.

Nothing with history is deleted: `<entity>_deactivate` / `<entity>_reactivate` flip
`is_active`. Updates lock the row (`select_for_update`) so validation sees what is saved.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, models, transaction
from django.utils import timezone as django_timezone

from accounts.models import User
from accounts.services import user_create, users_sign_out_everywhere
from audit import services as audit
from clinic.errors import constraint_name
from clinic.permissions import PATIENT, PRACTITIONER

from .models import (
    ClinicSettings,
    ConsentText,
    Coverage,
    Guardian,
    Location,
    Patient,
    PatientConsent,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)

M = TypeVar("M", bound=models.Model)
# The records that are deactivated rather than deleted (they have `is_active`).
Deactivatable = TypeVar(
    "Deactivatable", Location, Specialty, Practitioner, Patient, Payer, Coverage, ServiceCode
)

# Constraint name prefix -> (field, message). Matched by prefix: Citus appends shard numbers.
CONSTRAINT_ERRORS: dict[str, tuple[str, str]] = {
    "practitioner_npi_10_digits": ("npi", "An NPI is 10 digits."),
    "practitioner_npi_check_digit": ("npi", "The NPI's check digit is wrong."),
    "practitioner_rating_0_to_5": ("rating_average", "A rating is between 0 and 5."),
    "practitioner_rating_count": ("rating_count", "A count cannot be negative."),
    "practice_practitioner_rating_count": ("rating_count", "A count cannot be negative."),
    "practice_practitioner_npi": ("npi", "Another practitioner has this NPI."),
    "practice_practitioner_user": ("user", "This user is linked to another practitioner."),
    "practice_patient_user": ("user", "This user is linked to another patient."),
    "patient_dob_after_1900": ("date_of_birth", "A date of birth after 1900-01-01."),
    "coverage_dates_ordered": ("effective_to", "The coverage cannot end before it starts."),
    "coverage_copay_non_negative": ("copay_amount", "A copay cannot be negative."),
    "coverage_unique_member": ("member_id", "This patient already has this payer and member id."),
    "practice_payer_edi_payer_id": ("edi_payer_id", "Another payer has this EDI payer id."),
    "practice_specialty_slug": ("slug", "Another specialty has this slug."),
    "practice_servicecode_code": ("code", "This code already exists."),
    "service_code_format": ("code", "A 5-character CPT or HCPCS code."),
    "service_code_unit_minutes": ("unit_minutes", "Minutes per unit must be positive."),
    "practice_servicecode_unit_minutes": ("unit_minutes", "Minutes per unit must be positive."),
    "clinic_settings_slot_step": ("slot_step_minutes", "Between 5 and 120 minutes."),
}
_UNIQUE_KEY = re.compile(r"Key \(([a-z_]+)\)")


def _integrity_error(exc: IntegrityError) -> ValidationError:
    name = constraint_name(exc)
    for prefix, (field, message) in CONSTRAINT_ERRORS.items():
        if name.startswith(prefix):
            return ValidationError({field: message}, code="constraint")
    match = _UNIQUE_KEY.search(str(exc))
    field = match.group(1).removesuffix("_id") if match else NON_FIELD_ERRORS
    return ValidationError({field: f"The database refused this value ({name})."}, code="constraint")


def _name_fields(exc: ValidationError) -> ValidationError:
    """Put a multi-field uniqueness error on its last field (`member_id` of patient + payer +
    member id): the API names a field for every refusal it can."""
    errors = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.error_list}
    named: dict[str, list[ValidationError]] = {}
    for name, field_errors in errors.items():
        for error in field_errors:
            fields = (error.params or {}).get("unique_check") if error.code else None
            target = fields[-1] if name == NON_FIELD_ERRORS and fields else name
            named.setdefault(target, []).append(error)
    return ValidationError(named)


def _save(instance: M, *, update_fields: Iterable[str] | None = None) -> M:
    """Validate the whole row, then save it; a constraint lost to a race is a field error."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise _name_fields(exc) from None
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc
    return instance


def _apply(instance: M, data: Mapping[str, Any], *, fields: Iterable[str]) -> list[str]:
    """Set the allowed `fields` present in `data` on `instance`; returns those that changed."""
    allowed = set(fields)
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in unknown})
    changed = []
    for name, value in data.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _locked(model: type[M], pk: int) -> M:
    return model._default_manager.select_for_update().get(pk=pk)


def _set_active(
    model: type[Deactivatable], instance: Deactivatable, is_active: bool
) -> Deactivatable:
    locked = _locked(model, instance.pk)
    if locked.is_active != is_active:
        locked.is_active = is_active
        locked.save(update_fields=["is_active"])
    return locked


def _check_user_role(user: User | None, role: str, field: str = "user") -> None:
    if user is not None and role not in user.roles:
        raise ValidationError({field: f"The linked user must have the '{role}' role."})


# Locations ----------------------------------------------------------------------------------

LOCATION_FIELDS = ("name", "address", "phone", "email", "timezone")


@transaction.atomic
def location_create(
    *, name: str, timezone: str, address: str = "", phone: str = "", email: str = ""
) -> Location:
    """A location that takes bookings; it needs a phone (Location.clean): the patient pages
    give it wherever a visit can no longer be changed online."""
    return _save(Location(name=name, timezone=timezone, address=address, phone=phone, email=email))


@transaction.atomic
def location_update(*, location: Location, data: Mapping[str, Any]) -> Location:
    location = _locked(Location, location.pk)
    changed = _apply(location, data, fields=LOCATION_FIELDS)
    return _save(location, update_fields=changed) if changed else location


@transaction.atomic
def location_deactivate(*, location: Location) -> Location:
    """Hide the location from search and booking; practitioners keep it in their history."""
    return _set_active(Location, location, False)


@transaction.atomic
def location_reactivate(*, location: Location) -> Location:
    """Take bookings again: only with a phone patients can call (Location.clean)."""
    locked = _locked(Location, location.pk)
    if not locked.is_active:
        locked.is_active = True
        _save(locked, update_fields=["is_active"])
    return locked


# Specialties --------------------------------------------------------------------------------

SPECIALTY_FIELDS = ("slug", "name")


@transaction.atomic
def specialty_create(*, slug: str, name: str) -> Specialty:
    return _save(Specialty(slug=slug, name=name))


@transaction.atomic
def specialty_update(*, specialty: Specialty, data: Mapping[str, Any]) -> Specialty:
    specialty = _locked(Specialty, specialty.pk)
    changed = _apply(specialty, data, fields=SPECIALTY_FIELDS)
    return _save(specialty, update_fields=changed) if changed else specialty


@transaction.atomic
def specialty_deactivate(*, specialty: Specialty) -> Specialty:
    return _set_active(Specialty, specialty, False)


@transaction.atomic
def specialty_reactivate(*, specialty: Specialty) -> Specialty:
    return _set_active(Specialty, specialty, True)


# Practitioners ------------------------------------------------------------------------------

PRACTITIONER_FIELDS = (
    "user",
    "display_name",
    "title",
    "npi",
    "languages",
    "bio",
    "rating_average",
    "rating_count",
    "is_verified",
    "accepts_new_patients",
    "offers_telehealth",
    "timezone",
)


@transaction.atomic
def practitioner_create(
    *,
    display_name: str,
    timezone: str,
    title: str = "",
    npi: str | None = None,
    languages: Iterable[str] = (),
    bio: str = "",
    rating_average: Decimal | int = 0,
    rating_count: int = 0,
    is_verified: bool = False,
    accepts_new_patients: bool = True,
    offers_telehealth: bool = False,
    user: User | None = None,
    specialties: Iterable[Specialty] | None = None,
    locations: Iterable[Location] | None = None,
) -> Practitioner:
    """Add a practitioner. The NPI is checked (format and check digit) in Python and again by
    the database; a linked user must hold the practitioner role."""
    _check_user_role(user, PRACTITIONER)
    practitioner = _save(
        Practitioner(
            user=user,
            display_name=display_name,
            title=title,
            npi=npi or None,
            languages=list(languages),
            bio=bio,
            rating_average=rating_average,
            rating_count=rating_count,
            is_verified=is_verified,
            accepts_new_patients=accepts_new_patients,
            offers_telehealth=offers_telehealth,
            timezone=timezone,
        )
    )
    if specialties is not None:
        practitioner.specialties.set(specialties)
    if locations is not None:
        practitioner.locations.set(locations)
    return practitioner


@transaction.atomic
def practitioner_update(*, practitioner: Practitioner, data: Mapping[str, Any]) -> Practitioner:
    """Change the given fields (`specialties` and `locations` replace the whole set)."""
    data = dict(data)
    specialties = data.pop("specialties", None)
    locations = data.pop("locations", None)
    if "npi" in data:
        data["npi"] = data["npi"] or None
    if "languages" in data:
        data["languages"] = list(data["languages"])
    practitioner = _locked(Practitioner, practitioner.pk)
    changed = _apply(practitioner, data, fields=PRACTITIONER_FIELDS)
    if "user" in changed:
        _check_user_role(practitioner.user, PRACTITIONER)
    if changed:
        _save(practitioner, update_fields=changed)
    if specialties is not None:
        practitioner.specialties.set(specialties)
    if locations is not None:
        practitioner.locations.set(locations)
    return practitioner


@transaction.atomic
def practitioner_deactivate(*, practitioner: Practitioner) -> Practitioner:
    """Take the practitioner out of search and booking. Their history stays."""
    return _set_active(Practitioner, practitioner, False)


@transaction.atomic
def practitioner_reactivate(*, practitioner: Practitioner) -> Practitioner:
    return _set_active(Practitioner, practitioner, True)


# Patients -----------------------------------------------------------------------------------

PATIENT_FIELDS = (
    "user",
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "email",
    "phone",
    "preferred_language",
    "timezone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
)
# What a patient may change on their own record; identity (name, birth date, sex) and the
# linked account stay with the clinic, which checks them against insurance.
PATIENT_SELF_FIELDS = (
    "email",
    "phone",
    "preferred_language",
    "timezone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
)


@transaction.atomic
def patient_create(
    *,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    timezone: str,
    sex: str = Patient.Sex.UNKNOWN,
    email: str = "",
    phone: str = "",
    preferred_language: str = "en",
    address_line1: str = "",
    address_line2: str = "",
    city: str = "",
    state: str = "",
    postal_code: str = "",
    country: str = "US",
    user: User | None = None,
) -> Patient:
    """Register a patient; a linked user must hold the patient role."""
    _check_user_role(user, PATIENT)
    return _save(
        Patient(
            user=user,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=date_of_birth,
            sex=sex,
            email=email,
            phone=phone,
            preferred_language=preferred_language,
            timezone=timezone,
            address_line1=address_line1,
            address_line2=address_line2,
            city=city,
            state=state,
            postal_code=postal_code,
            country=country,
        )
    )


@transaction.atomic
def patient_register(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    timezone: str,
    phone: str = "",
    active: bool = True,
    request: Any = None,
) -> Patient:
    """Sign-up of a patient on the clinic's pages: a user with the patient role, linked to
    their patient record. `active=False` leaves the account unable to sign in until
    `patient_account_confirm` (the portal's emailed link proves the address first).

    The clinic may already hold the record (registered by the front desk, without an
    account): it is linked when its email, last name and date of birth all match and no
    account owns it yet — the email alone would let anyone who knows it claim a stranger's
    chart. Otherwise a new record is created. The record row is locked while it is linked,
    and the one-to-one `user` column refuses a second account for it. Raises ValidationError
    naming the field (a duplicate email, a weak password, a bad date of birth).

    The audit trail gets a `create` of the new record, or an `update` of the linked one's
    `user`, by the new account: the `request`'s event (its address and id, written after the
    response), or, without one, written at once in this transaction.
    """
    try:
        user = user_create(
            email=email,
            password=password,
            full_name=f"{first_name} {last_name}".strip(),
            roles=[PATIENT],
        )
    except IntegrityError as exc:  # the same email signed up at the same moment
        raise ValidationError(
            {"email": "A user with this email already exists in this clinic."}
        ) from exc
    if not active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    existing = (
        Patient.objects.select_for_update()
        .filter(
            user__isnull=True,
            is_active=True,
            email__iexact=user.email,
            last_name__iexact=last_name.strip(),
            date_of_birth=date_of_birth,
        )
        .order_by("id")
        .first()
    )
    if existing is not None:
        existing.user = user
        patient = _save(existing, update_fields=["user"])
        _record_signup(request, audit.UPDATE, patient, user=user, fields=["user"])
        return patient
    patient = patient_create(
        user=user,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        date_of_birth=date_of_birth,
        timezone=timezone,
        email=user.email,
        phone=phone,
    )
    _record_signup(request, audit.CREATE, patient, user=user)
    return patient


def _record_signup(
    request: Any, action: str, patient: Patient, *, user: User, fields: Iterable[str] = ()
) -> None:
    label = "sign-up"
    if request is not None:
        audit.record(request, action, patient, user=user, fields=fields, label=label)
    else:
        audit.record_now(action, patient, user=user, fields=fields, label=label)


def patient_account_unconfirmed(user: User) -> bool:
    """A patient's account signed up on the clinic's pages and never opened: closed, never
    signed in, no role but patient's (an account the clinic closed after use stays closed)."""
    return not user.is_active and user.last_login is None and user.roles == {PATIENT}


@transaction.atomic
def patient_account_confirm(*, user: User) -> User:
    """Open a signed-up patient's account (their address is proven: the emailed sign-up or
    password-reset link). The user row is locked, so two clicks open it once; only an
    unconfirmed patient's account is opened here."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not patient_account_unconfirmed(user):
        raise ValidationError({"user": "Only an unconfirmed patient's account opens here."})
    user.is_active = True
    user.save(update_fields=["is_active"])
    return user


@transaction.atomic
def patient_update(
    *, patient: Patient, data: Mapping[str, Any], by_patient: bool = False
) -> Patient:
    """Change the given fields. `by_patient` limits them to PATIENT_SELF_FIELDS (the rest is
    refused, naming the field, and nothing is written)."""
    patient = _locked(Patient, patient.pk)
    changed = _apply(patient, data, fields=PATIENT_SELF_FIELDS if by_patient else PATIENT_FIELDS)
    if "user" in changed:
        _check_user_role(patient.user, PATIENT)
    return _save(patient, update_fields=changed) if changed else patient


@transaction.atomic
def patient_deactivate(*, patient: Patient) -> Patient:
    return _set_active(Patient, patient, False)


@transaction.atomic
def patient_reactivate(*, patient: Patient) -> Patient:
    return _set_active(Patient, patient, True)


# Payers and coverage ------------------------------------------------------------------------

PAYER_FIELDS = ("name", "edi_payer_id", "claim_filing_code")


@transaction.atomic
def payer_create(
    *, name: str, edi_payer_id: str, claim_filing_code: str = Payer.ClaimFilingCode.COMMERCIAL
) -> Payer:
    return _save(Payer(name=name, edi_payer_id=edi_payer_id, claim_filing_code=claim_filing_code))


@transaction.atomic
def payer_update(*, payer: Payer, data: Mapping[str, Any]) -> Payer:
    payer = _locked(Payer, payer.pk)
    changed = _apply(payer, data, fields=PAYER_FIELDS)
    return _save(payer, update_fields=changed) if changed else payer


@transaction.atomic
def payer_deactivate(*, payer: Payer) -> Payer:
    """No new coverage should name this payer; existing coverage and claims keep it."""
    return _set_active(Payer, payer, False)


@transaction.atomic
def payer_reactivate(*, payer: Payer) -> Payer:
    return _set_active(Payer, payer, True)


COVERAGE_FIELDS = (
    "payer",
    "member_id",
    "group_number",
    "priority",
    "effective_from",
    "effective_to",
    "copay_amount",
    "subscriber_relationship",
    "subscriber_name",
    "subscriber_date_of_birth",
)


def _check_payer_active(payer: Payer) -> None:
    if not payer.is_active:
        raise ValidationError({"payer": "This payer is no longer active."})


@transaction.atomic
def coverage_create(
    *,
    patient: Patient,
    payer: Payer,
    member_id: str,
    effective_from: date,
    effective_to: date | None = None,
    group_number: str = "",
    priority: str = Coverage.Priority.PRIMARY,
    copay_amount: Decimal | int = 0,
    subscriber_relationship: str = Coverage.Relationship.SELF,
    subscriber_name: str = "",
    subscriber_date_of_birth: date | None = None,
) -> Coverage:
    """Add a patient's coverage. An end before the start is refused on `effective_to` (the
    database's `coverage_dates_ordered` is the guarantee); a subscriber other than the patient
    must be named (`coverage_subscriber_named`)."""
    _check_payer_active(payer)
    return _save(
        Coverage(
            patient=patient,
            payer=payer,
            member_id=member_id,
            group_number=group_number,
            priority=priority,
            effective_from=effective_from,
            effective_to=effective_to,
            copay_amount=copay_amount,
            subscriber_relationship=subscriber_relationship,
            subscriber_name=subscriber_name,
            subscriber_date_of_birth=subscriber_date_of_birth,
        )
    )


@transaction.atomic
def coverage_update(*, coverage: Coverage, data: Mapping[str, Any]) -> Coverage:
    coverage = _locked(Coverage, coverage.pk)
    changed = _apply(coverage, data, fields=COVERAGE_FIELDS)
    if "payer" in changed:
        _check_payer_active(coverage.payer)
    return _save(coverage, update_fields=changed) if changed else coverage


@transaction.atomic
def coverage_deactivate(*, coverage: Coverage) -> Coverage:
    return _set_active(Coverage, coverage, False)


@transaction.atomic
def coverage_reactivate(*, coverage: Coverage) -> Coverage:
    return _set_active(Coverage, coverage, True)


# Service codes ------------------------------------------------------------------------------

SERVICE_CODE_FIELDS = ("code", "label", "unit_minutes")


@transaction.atomic
def service_code_create(*, code: str, label: str, unit_minutes: int | None = None) -> ServiceCode:
    """Add a billable code. Only the number ships with Clinic; `label` is the clinic's own
    wording (CPT descriptions are licensed)."""
    return _save(ServiceCode(code=code.upper(), label=label, unit_minutes=unit_minutes))


@transaction.atomic
def service_code_update(*, service_code: ServiceCode, data: Mapping[str, Any]) -> ServiceCode:
    data = dict(data)
    if "code" in data:
        data["code"] = data["code"].upper()
    service_code = _locked(ServiceCode, service_code.pk)
    changed = _apply(service_code, data, fields=SERVICE_CODE_FIELDS)
    return _save(service_code, update_fields=changed) if changed else service_code


@transaction.atomic
def service_code_deactivate(*, service_code: ServiceCode) -> ServiceCode:
    return _set_active(ServiceCode, service_code, False)


@transaction.atomic
def service_code_reactivate(*, service_code: ServiceCode) -> ServiceCode:
    return _set_active(ServiceCode, service_code, True)


# Clinic settings ----------------------------------------------------------------------------

CLINIC_SETTINGS_FIELDS = (
    "slot_step_minutes",
    "late_cancel_hours",
    "unit_rounding",
    "authorization_policy",
    "smart_booking_verified_only",
    "telehealth_base_url",
)


def staff_two_factor_enforce() -> None:
    """Two-factor sign-in just became required: the tokens and sessions staff got with their
    password alone end (sign out everywhere), so every staff member signs in again with a
    code, enrolling an app first."""
    users_sign_out_everywhere(
        user_ids=User.objects.filter(is_staff=True).values_list("pk", flat=True)
    )


@transaction.atomic
def clinic_settings_update(*, data: Mapping[str, Any]) -> ClinicSettings:
    ClinicSettings.load()
    settings = _locked(ClinicSettings, 1)
    changed = _apply(settings, data, fields=CLINIC_SETTINGS_FIELDS)
    return _save(settings, update_fields=changed) if changed else settings


# Intake: insurance, a guardian, consents ----------------------------------------------------

ADULT_AGE = 18
CARD_MAX_BYTES = 5 * 1024 * 1024
CARD_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


@dataclass(frozen=True)
class Insurance:
    """Insurance as the patient gives it at sign-up (or staff on the patient's page)."""

    payer: Payer
    member_id: str
    group_number: str = ""
    subscriber_relationship: str = Coverage.Relationship.SELF
    subscriber_name: str = ""
    subscriber_date_of_birth: date | None = None
    card_front: UploadedFile | None = None
    card_back: UploadedFile | None = None


@dataclass(frozen=True)
class GuardianSpec:
    name: str
    relationship: str
    phone: str = ""
    email: str = ""


def patient_is_minor(date_of_birth: date, today: date) -> bool:
    birthday_passed = (today.month, today.day) >= (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - (0 if birthday_passed else 1) < ADULT_AGE


def consent_texts_current() -> list[ConsentText]:
    """The newest active version of each kind of consent: what sign-up asks to sign."""
    return list(
        ConsentText.objects.filter(is_active=True).order_by("kind", "-version").distinct("kind")
    )


def card_image_check(upload: UploadedFile, field: str) -> None:
    """An insurance card photo: an image (JPEG, PNG or WebP, read by Pillow, not trusted from
    its name or type) of at most 5 MB; refused naming the field."""
    from PIL import Image, UnidentifiedImageError

    if upload.size is None or upload.size > CARD_MAX_BYTES:
        raise ValidationError({field: "The photo must be at most 5 MB."})
    try:
        with Image.open(upload) as image:
            image.verify()
            kind = image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError({field: "Upload a photo of the card (JPEG, PNG or WebP)."}) from None
    finally:
        upload.seek(0)
    if kind not in CARD_FORMATS:
        raise ValidationError({field: "Upload a photo of the card (JPEG, PNG or WebP)."})
    upload.name = f"card{CARD_FORMATS[kind]}"


@transaction.atomic
def patient_intake_record(
    *,
    patient: Patient,
    insurance: Insurance | None,
    guardian: GuardianSpec | None,
    consents: Sequence[ConsentText],
    signed_name: str,
    by: User | None = None,
) -> Patient:
    """What sign-up (and the front desk) collect before the first visit, in one transaction
    under the patient's row lock: the insurance as a coverage (card photos in private
    storage), a guardian or responsible party (required under 18), and a signature on every
    current consent (each version signed once: `patient_consent_once_per_version`).
    Raises ValidationError naming the field; nothing is kept when anything is refused."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    today = django_timezone.localdate()
    signed_name = (signed_name or "").strip()
    errors: dict[str, str] = {}
    required = {text.pk for text in consent_texts_current()}
    if not signed_name and (required or consents):
        errors["signed_name"] = "Type your full name to sign."
    if required - {text.pk for text in consents}:
        errors["consents"] = "Read and accept each consent to continue."
    if (
        guardian is None
        and patient_is_minor(patient.date_of_birth, today)
        and not patient.guardians.exists()
    ):
        errors["guardian_name"] = "A patient under 18 needs a parent or guardian named here."
    if errors:
        raise ValidationError(errors)
    for name in ("card_front", "card_back"):
        upload = getattr(insurance, name, None)
        if upload is not None:
            card_image_check(upload, name)
    coverage = None
    if insurance is not None:
        coverage = coverage_create(
            patient=patient,
            payer=insurance.payer,
            member_id=insurance.member_id.strip(),
            group_number=insurance.group_number.strip(),
            effective_from=today,
            subscriber_relationship=insurance.subscriber_relationship,
            subscriber_name=insurance.subscriber_name.strip(),
            subscriber_date_of_birth=insurance.subscriber_date_of_birth,
        )
    if guardian is not None:
        _save(
            Guardian(
                patient=patient,
                name=guardian.name.strip(),
                relationship=guardian.relationship,
                phone=guardian.phone.strip(),
                email=guardian.email.strip(),
            )
        )
    now = django_timezone.now()
    for text in consents:
        PatientConsent.objects.get_or_create(
            patient=patient,
            consent_text=text,
            defaults={"signed_name": signed_name[:200], "signed_at": now, "signed_by": by},
        )
    if coverage is not None and insurance is not None:
        # Last: files written to storage do not roll back with the transaction.
        coverage_cards_set(coverage=coverage, front=insurance.card_front, back=insurance.card_back)
    return patient


def files_delete(names: Iterable[str | None]) -> None:
    """Delete card photos from private storage (after the change that dropped them commits:
    a rollback must not lose a photo still referenced)."""
    storage = Coverage._meta.get_field("card_front").storage
    for name in names:
        if name:
            storage.delete(name)


@transaction.atomic
def coverage_cards_set(
    *, coverage: Coverage, front: UploadedFile | None = None, back: UploadedFile | None = None
) -> Coverage:
    """Store the card photos given (checked images) in private storage; a photo replaced is
    deleted once the change commits."""
    coverage = _locked(Coverage, coverage.pk)
    old: list[str] = []
    changed = []
    for name, upload in (("card_front", front), ("card_back", back)):
        if upload is None:
            continue
        card_image_check(upload, name)
        field = getattr(coverage, name)
        if field:
            old.append(field.name)
        field.save(upload.name, upload, save=False)
        changed.append(name)
    if changed:
        coverage.save(update_fields=changed)
        transaction.on_commit(lambda: files_delete(old))
    return coverage


@transaction.atomic
def patient_signup(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    timezone: str,
    phone: str = "",
    insurance: Insurance | None,
    guardian: GuardianSpec | None,
    consents: Sequence[ConsentText],
    signed_name: str,
    request: Any = None,
) -> Patient:
    """Sign-up with its intake, all or nothing: `patient_register` (inactive until the email
    is confirmed; `request` for its audit event), then `patient_intake_record`."""
    patient = patient_register(
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        timezone=timezone,
        phone=phone,
        active=False,
        request=request,
    )
    return patient_intake_record(
        patient=patient,
        insurance=insurance,
        guardian=guardian,
        consents=consents,
        signed_name=signed_name,
        by=patient.user,
    )
