from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import ClinicAdminSpec, clinic_create, clinic_host


class Command(BaseCommand):
    help = "Provision a clinic from the template schema, with its roles and first admin."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", required=True)
        parser.add_argument("--admin-name", default="")
        parser.add_argument(
            "--published",
            action="store_true",
            help="Open the patient pages at once (otherwise the clinic's admin publishes them).",
        )

    def handle(self, *args, **opts):
        try:
            clinic = clinic_create(
                slug=opts["slug"],
                name=opts["name"],
                timezone=opts["timezone"],
                admin=ClinicAdminSpec(
                    email=opts["admin_email"],
                    password=opts["admin_password"],
                    full_name=opts["admin_name"],
                ),
                published=opts["published"],
            )
        except ValidationError as exc:
            message = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(message) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created {clinic.name} at http://{clinic_host(clinic.slug)}/")
        )
