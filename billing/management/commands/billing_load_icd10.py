"""Load the CMS ICD-10-CM order file into one clinic's (or every clinic's) DiagnosisCode table.

    manage.py billing_load_icd10 icd10cm_order_2026.txt --clinic acme

Once a clinic has codes, episode diagnoses must be among them (format checks only before)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.charges import icd10_load
from tenants.selectors import clinic_list


class Command(BaseCommand):
    help = "Load the CMS ICD-10-CM order file (billable codes) into a clinic's diagnosis codes."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="icd10cm_order_YYYY.txt from cms.gov")
        parser.add_argument("--clinic", help="the clinic's slug (default: every clinic)")

    def handle(self, *args, **opts):
        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        clinics = [c for c in clinic_list() if opts["clinic"] in (None, c.slug)]
        if not clinics:
            raise CommandError(f"No clinic {opts['clinic']!r}.")
        for clinic in clinics:
            with tenant_context(clinic), path.open(encoding="latin-1") as lines:
                try:
                    count = icd10_load(lines=lines)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages)) from exc
            self.stdout.write(self.style.SUCCESS(f"{clinic.name}: {count} ICD-10-CM codes."))
