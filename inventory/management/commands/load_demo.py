"""Loads the catalog and the demo data, with one demo user per role. Safe to run twice."""

import importlib
import importlib.util

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = [
    ("tech", "technician", "Tess Technician"),
    ("pharm", "pharmacist", "Phil Pharmacist"),
    ("audit", "auditor", "Aude Auditor"),
    ("recall", "recall_coordinator", "Rick Recall-Coordinator"),
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

        from inventory import demo as inventory_demo

        self.stdout.write(f"demo stock: {inventory_demo.load(actor=users['pharmacist'])}")
        for module_name in ("traceability.demo", "traceability.recall_demo"):
            if importlib.util.find_spec(module_name) is None:
                continue
            module = importlib.import_module(module_name)
            module.load(actor=users["pharmacist"])
            self.stdout.write(f"{module_name}: loaded")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
