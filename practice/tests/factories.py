"""factory_boy factories for the practice models. Use them inside a clinic's schema
(`with in_clinic(acme): PractitionerFactory()`)."""

import datetime
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from practice.models import (
    Coverage,
    Location,
    Patient,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)
from practice.validators import npi_complete


class LocationFactory(DjangoModelFactory):
    class Meta:
        model = Location

    name = factory.Sequence(lambda n: f"Location {n:03d}")
    address = factory.Sequence(lambda n: f"{n} Main Street")
    phone = factory.Sequence(lambda n: f"+1 212 555 {n % 10000:04d}")  # takes bookings
    timezone = "America/New_York"


class SpecialtyFactory(DjangoModelFactory):
    class Meta:
        model = Specialty
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"specialty-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class PractitionerFactory(DjangoModelFactory):
    class Meta:
        model = Practitioner
        skip_postgeneration_save = True

    display_name = factory.Sequence(lambda n: f"Practitioner {n:04d}")
    title = "MD"
    npi = factory.Sequence(lambda n: npi_complete(f"{100000000 + n:09d}"))
    languages = factory.LazyFunction(lambda: ["en"])
    rating_average = Decimal("4.00")
    rating_count = 10
    timezone = "America/New_York"

    @factory.post_generation
    def specialties(self, create, extracted, **kwargs):
        if create and extracted:
            self.specialties.set(extracted)

    @factory.post_generation
    def locations(self, create, extracted, **kwargs):
        if create and extracted:
            self.locations.set(extracted)


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    first_name = factory.Sequence(lambda n: f"Pat{n}")
    last_name = factory.Sequence(lambda n: f"Patient{n:04d}")
    date_of_birth = datetime.date(1990, 5, 17)
    email = factory.LazyAttribute(lambda o: f"{o.first_name.lower()}@example.test")
    timezone = "America/New_York"


class PayerFactory(DjangoModelFactory):
    class Meta:
        model = Payer

    name = factory.Sequence(lambda n: f"Payer {n:03d}")
    edi_payer_id = factory.Sequence(lambda n: f"EDI{n:05d}")


class CoverageFactory(DjangoModelFactory):
    class Meta:
        model = Coverage

    patient = factory.SubFactory(PatientFactory)
    payer = factory.SubFactory(PayerFactory)
    member_id = factory.Sequence(lambda n: f"M{n:08d}")
    effective_from = datetime.date(2025, 1, 1)


class ServiceCodeFactory(DjangoModelFactory):
    class Meta:
        model = ServiceCode
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"{97150 + n % 50}")
    label = factory.LazyAttribute(lambda o: f"Our service {o.code}")
    unit_minutes = 15
