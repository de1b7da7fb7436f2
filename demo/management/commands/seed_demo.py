from django.core.management.base import BaseCommand

from demo.data import seed_demo


class Command(BaseCommand):
    help = "Load the two demo clinics (idempotent) and print their URLs and logins."

    def handle(self, *args, **options):
        lines = seed_demo()
        self.stdout.write(self.style.SUCCESS("Clinic demo is ready:"))
        for line in lines:
            self.stdout.write(line)
