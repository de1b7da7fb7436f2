"""Forms of the patient pages. They parse what the browser sends; the rules live in the
services (and, for smart booking, in `scheduling.smart.request`, which the API's serializer
checks too, so both paths refuse the same requests)."""

import uuid
from datetime import timedelta

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from practice.models import ConsentText, Coverage, Guardian, Location, Payer, Practitioner
from practice.services import GuardianSpec, Insurance, patient_account_unconfirmed, patient_is_minor
from scheduling.models import AppointmentType

from .templatetags.portal import language_name
from .zones import zone_valid

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]
TIMES_OF_DAY = [
    ("morning", _("Morning (before noon)")),
    ("afternoon", _("Afternoon (noon – 5 pm)")),
    ("evening", _("Evening (after 5 pm)")),
]
MODE_IN_PERSON = "in_person"
MODE_TELEHEALTH = "telehealth"


def apply_errors(form: forms.Form, error: ValidationError, rename: dict | None = None) -> None:
    """Put a service's ValidationError on the form's fields (unknown fields: the whole form)."""
    rename = rename or {}
    messages = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
    for field, texts in messages.items():
        name = rename.get(field, field)
        name = name if name in form.fields else None
        for text in texts:
            form.add_error(name, text)


class SignInForm(AuthenticationForm):
    """Django's sign-in form, with the email as the user name (accounts.User.USERNAME_FIELD)."""

    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PasswordResetForm(DjangoPasswordResetForm):
    """Django's, also mailing the unconfirmed accounts of patients (which Django skips as
    inactive): see portal.auth.PasswordResetView."""

    def get_users(self, email):
        found = User.objects.filter(email__iexact=email)
        return (
            user
            for user in found
            if (user.is_active or patient_account_unconfirmed(user))
            and user.has_usable_password()
            and user.email.casefold() == email.casefold()
        )


class SignUpForm(forms.Form):
    first_name = forms.CharField(
        label=_("First name"),
        max_length=100,
        widget=forms.TextInput({"autocomplete": "given-name"}),
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=100,
        widget=forms.TextInput({"autocomplete": "family-name"}),
    )
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput({"autocomplete": "email"}))
    date_of_birth = forms.DateField(
        label=_("Date of birth"), widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    phone = forms.CharField(
        label=_("Mobile phone (optional)"),
        max_length=40,
        required=False,
        widget=forms.TextInput({"autocomplete": "tel", "inputmode": "tel"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        help_text=_("At least 12 characters; not a common password."),
        widget=forms.PasswordInput({"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput({"autocomplete": "new-password"}),
    )
    # Filled in by portal.js with the browser's zone; the clinic's zone otherwise.
    timezone = forms.CharField(widget=forms.HiddenInput({"data-detect-zone": ""}), required=False)

    def clean_date_of_birth(self):
        value = self.cleaned_data["date_of_birth"]
        if value > timezone.localdate():
            raise ValidationError(_("A date of birth cannot be in the future."))
        return value

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        elif data.get("password1"):
            # Judged here, before anyone looks the email up: a weak password is refused alike
            # whether or not the email has an account (no enumeration through the errors).
            name = f"{data.get('first_name', '')} {data.get('last_name', '')}".strip()
            someone = User(email=data.get("email") or "", full_name=name)
            try:
                password_validation.validate_password(data["password1"], someone)
            except ValidationError as error:
                self.add_error("password1", error)
        if not zone_valid(data.get("timezone")):
            data["timezone"] = ""
        return data


class IntakeForm(forms.Form):
    """Sign-up's second half: insurance (card photos go to private storage), a guardian or
    responsible party (required under 18) and the clinic's current consents, signed by typing
    a name. The rules are `practice.services.patient_intake_record`'s; this parses."""

    payer = forms.ModelChoiceField(
        label=_("Insurance company"),
        queryset=Payer.objects.none(),
        required=False,
        empty_label=_("No insurance: I will pay myself"),
    )
    member_id = forms.CharField(label=_("Member id"), max_length=60, required=False)
    group_number = forms.CharField(
        label=_("Group number (optional)"), max_length=60, required=False
    )
    subscriber_relationship = forms.ChoiceField(
        label=_("The policy holder is"),
        choices=[
            (Coverage.Relationship.SELF, _("Me (the patient)")),
            (Coverage.Relationship.CHILD, _("My parent (I am their child)")),
            (Coverage.Relationship.SPOUSE, _("My spouse")),
            (Coverage.Relationship.OTHER, _("Someone else")),
        ],
        initial=Coverage.Relationship.SELF,
        required=False,
    )
    subscriber_name = forms.CharField(
        label=_("Policy holder's name (if not you)"), max_length=200, required=False
    )
    subscriber_date_of_birth = forms.DateField(
        label=_("Policy holder's birth date (optional)"),
        required=False,
        widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d"),
    )
    card_front = forms.FileField(
        label=_("Photo of the card, front (optional)"),
        required=False,
        widget=forms.ClearableFileInput({"accept": "image/jpeg,image/png,image/webp"}),
    )
    card_back = forms.FileField(
        label=_("Photo of the card, back (optional)"),
        required=False,
        widget=forms.ClearableFileInput({"accept": "image/jpeg,image/png,image/webp"}),
    )
    guardian_name = forms.CharField(
        label=_("Parent, guardian or responsible party"),
        max_length=200,
        required=False,
        help_text=_("Required for a patient under 18."),
    )
    guardian_relationship = forms.ChoiceField(
        label=_("Relationship to the patient"),
        choices=Guardian.Relationship.choices,
        required=False,
    )
    guardian_phone = forms.CharField(
        label=_("Their phone"),
        max_length=40,
        required=False,
        widget=forms.TextInput({"autocomplete": "off", "inputmode": "tel"}),
    )
    # "e-mail": the account's own "Email" field keeps a label no other field contains
    guardian_email = forms.EmailField(label=_("Their e-mail"), required=False)
    consents = forms.ModelMultipleChoiceField(
        label=_("Consents"),
        queryset=ConsentText.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Read and accept each consent to continue.")},
    )
    signed_name = forms.CharField(
        label=_("Sign by typing your full name"),
        max_length=200,
        help_text=_("A parent or guardian signs for a patient under 18."),
    )

    def __init__(self, *args, consent_texts, **kwargs):
        super().__init__(*args, **kwargs)
        self.consent_texts = list(consent_texts)
        self.fields["payer"].queryset = Payer.objects.filter(is_active=True).order_by("name")
        self.fields["consents"].queryset = ConsentText.objects.filter(
            pk__in=[text.pk for text in self.consent_texts]
        )
        # A clinic may ask no consent: then there is nothing to sign either.
        self.fields["consents"].required = bool(self.consent_texts)
        self.fields["signed_name"].required = bool(self.consent_texts)

    def clean_consents(self):
        chosen = self.cleaned_data["consents"] or []
        if {t.pk for t in chosen} != {t.pk for t in self.consent_texts}:
            raise ValidationError(_("Read and accept each consent to continue."))
        return list(chosen)

    def intake_clean(self, date_of_birth) -> None:
        """The checks that join fields (called from the sign-up form's clean)."""
        data = self.cleaned_data
        if data.get("payer") and not (data.get("member_id") or "").strip():
            self.add_error("member_id", _("The member id is on the card."))
        if (data.get("member_id") or "").strip() and not data.get("payer"):
            self.add_error("payer", _("Choose the insurance company."))
        if (
            data.get("subscriber_relationship") or Coverage.Relationship.SELF
        ) != Coverage.Relationship.SELF and not (data.get("subscriber_name") or "").strip():
            self.add_error("subscriber_name", _("Name the policy holder."))
        minor = date_of_birth and patient_is_minor(date_of_birth, timezone.localdate())
        if minor and not (data.get("guardian_name") or "").strip():
            self.add_error(
                "guardian_name", _("A patient under 18 needs a parent or guardian named here.")
            )
        if (data.get("guardian_name") or "").strip():
            if not data.get("guardian_relationship"):
                self.add_error("guardian_relationship", _("Choose the relationship."))
            if not (data.get("guardian_phone") or data.get("guardian_email")):
                self.add_error("guardian_phone", _("A phone or an email to reach them."))

    def insurance(self) -> Insurance | None:
        data = self.cleaned_data
        if not data.get("payer"):
            return None
        return Insurance(
            payer=data["payer"],
            member_id=data["member_id"],
            group_number=data.get("group_number") or "",
            subscriber_relationship=data.get("subscriber_relationship")
            or Coverage.Relationship.SELF,
            subscriber_name=data.get("subscriber_name") or "",
            subscriber_date_of_birth=data.get("subscriber_date_of_birth"),
            card_front=data.get("card_front") or None,
            card_back=data.get("card_back") or None,
        )

    def guardian(self) -> GuardianSpec | None:
        data = self.cleaned_data
        if not (data.get("guardian_name") or "").strip():
            return None
        return GuardianSpec(
            name=data["guardian_name"],
            relationship=data["guardian_relationship"],
            phone=data.get("guardian_phone") or "",
            email=data.get("guardian_email") or "",
        )


class SignUpWithIntakeForm(SignUpForm, IntakeForm):
    """The sign-up page's form: the account, then the intake."""

    def clean(self):
        data = super().clean()
        self.intake_clean(data.get("date_of_birth"))
        return data


class FinderForm(forms.Form):
    """The practitioner search's filters (all optional)."""

    q = forms.CharField(label=_("Name, condition or keyword"), required=False, max_length=100)
    specialty = forms.ChoiceField(label=_("Specialty"), required=False)
    language = forms.ChoiceField(label=_("Language"), required=False)
    location = forms.TypedChoiceField(label=_("Location"), required=False, coerce=int)
    type = forms.TypedChoiceField(label=_("Visit type"), required=False, coerce=int)
    telehealth = forms.BooleanField(label=_("Offers video visits"), required=False)
    accepting = forms.BooleanField(label=_("Accepting new patients"), required=False)

    def __init__(self, *args, specialties, languages, locations, types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = [("", _("Any specialty"))] + [
            (s.slug, s.name) for s in specialties
        ]
        self.fields["language"].choices = [("", _("Any language"))] + [
            (code, language_name(code)) for code in languages
        ]
        self.fields["location"].choices = [("", _("Any location"))] + [
            (loc.pk, loc.name) for loc in locations
        ]
        self.fields["type"].choices = [("", _("Any visit type"))] + [(t.pk, str(t)) for t in types]


class BookingForm(forms.Form):
    """A slot the patient picked: who, what, when (and where, for an in-person visit)."""

    practitioner = forms.ModelChoiceField(queryset=Practitioner.objects.filter(is_active=True))
    type = forms.ModelChoiceField(queryset=AppointmentType.objects.filter(is_active=True))
    start = forms.DateTimeField()
    location = forms.ModelChoiceField(
        queryset=Location.objects.filter(is_active=True), required=False
    )
    mode = forms.ChoiceField(
        label=_("How would you like to meet?"),
        required=False,
        choices=[(MODE_IN_PERSON, _("In person")), (MODE_TELEHEALTH, _("Video visit"))],
        widget=forms.RadioSelect,
    )
    # One per confirmation page: a double submit returns the first booking.
    idempotency_key = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    @staticmethod
    def new_key() -> str:
        return f"portal-{uuid.uuid4()}"


class AuthorizationRequestForm(forms.Form):
    """ "Request an assessment / authorization" for a visit type."""

    type = forms.ModelChoiceField(
        queryset=AppointmentType.objects.filter(is_active=True).select_related("service_code")
    )
    message = forms.CharField(
        label=_("Anything the clinic should know (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 2}),
    )


class RescheduleForm(forms.Form):
    start = forms.DateTimeField()


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=300,
        widget=forms.Textarea({"rows": 3}),
    )


class ErasureRequestForm(forms.Form):
    message = forms.CharField(
        label=_("Anything the clinic should know (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 3}),
    )


class SmartBookingForm(forms.Form):
    """What the patient needs; smart booking finds and books the best slot."""

    specialty = forms.ChoiceField(label=_("What kind of care?"), required=False)
    appointment_type = forms.TypedChoiceField(label=_("Visit type"), coerce=int)
    earliest_date = forms.DateField(
        label=_("Earliest date"), widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    latest_date = forms.DateField(
        label=_("Latest date"), widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    preferred_weekdays = forms.TypedMultipleChoiceField(
        label=_("Preferred days"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    preferred_times = forms.MultipleChoiceField(
        label=_("Preferred times"),
        choices=TIMES_OF_DAY,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    where = forms.ChoiceField(label=_("Where?"), required=False)
    language = forms.ChoiceField(label=_("Practitioner speaks"), required=False)
    practitioner = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, specialties, types, locations, languages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = [(s.slug, s.name) for s in specialties]
        self.fields["appointment_type"].choices = [(t.pk, str(t)) for t in types]
        self.fields["where"].choices = [
            ("", _("Anywhere (in person or video)")),
            (MODE_TELEHEALTH, _("Video visit")),
        ] + [(f"location-{loc.pk}", loc.name) for loc in locations]
        self.fields["language"].choices = [("", _("Any language"))] + [
            (code, language_name(code)) for code in languages
        ]
        if not self.is_bound:
            today = timezone.localdate()
            self.initial.setdefault("earliest_date", today)
            self.initial.setdefault("latest_date", today + timedelta(days=14))

    def clean(self):
        data = super().clean()
        if not data.get("practitioner") and not data.get("specialty"):
            self.add_error("specialty", _("Choose the kind of care you need."))
        return data

    def to_request(self, *, tz: str) -> dict:
        """The smart-booking request (the API's shape) for the cleaned data."""
        data = self.cleaned_data
        where = data.get("where") or ""
        request = {
            "appointment_type": data["appointment_type"],
            "earliest_date": data["earliest_date"].isoformat(),
            "latest_date": data["latest_date"].isoformat(),
            "preferred_weekdays": data.get("preferred_weekdays") or [],
            "preferred_times": data.get("preferred_times") or [],
            "tz": tz,
        }
        if data.get("practitioner"):
            request["practitioner"] = data["practitioner"]
        else:
            request["specialty"] = data["specialty"]
        if where == MODE_TELEHEALTH:
            request["telehealth"] = True
        elif where.startswith("location-"):
            request["location"] = int(where.removeprefix("location-"))
        if data.get("language"):
            request["language"] = data["language"]
        return request
