"""Loads the catalog and the demo data, with one demo user per role. Safe to run twice.

It lives with the pages because it sets up what they show: each floor's own demo (stock,
patients and infusions, a recall) is loaded in floor order."""

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.roles import AUDITOR, NURSE, PHARMACIST, RECALL_COORDINATOR, TECHNICIAN
from inventory import demo as inventory_demo
from recalls import demo as recalls_demo
from traceability import demo as traceability_demo

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = [
    ("tech", TECHNICIAN, "Tess Technician"),
    ("pharm", PHARMACIST, "Phil Pharmacist"),
    ("audit", AUDITOR, "Aude Auditor"),
    ("recall", RECALL_COORDINATOR, "Rick Recall-Coordinator"),
    ("nurse", NURSE, "Nina Nurse"),
]


class Command(BaseCommand):
    help = "Load the product catalog and demo stock, patients, sessions and a recall (idempotent)."

    def handle(self, *args, **options):
        call_command("load_catalog", verbosity=options["verbosity"])
        users = {}
        for username, role, full_name in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={
                "first_name": full_name.split()[0], "last_name": full_name.split()[-1]})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            users[role] = user
        admin, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()

        actor = users[PHARMACIST]
        self.stdout.write(f"demo stock: {inventory_demo.load(actor=actor)}")
        # The cold chain: a ward fridge with a past excursion awaiting the pharmacist.
        self.stdout.write(f"demo cold chain: {inventory_demo.load_cold_chain(actor=actor)} excursion(s) recorded")
        traceability_demo.load(actor=actor, nurse=users[NURSE])
        self.stdout.write("demo patients, infusions (an administration record with a reaction), a home supply "
                          "and a lot with a reaction signal: loaded")
        recalls_demo.load(actor=actor)
        self.stdout.write("demo recall: loaded")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
