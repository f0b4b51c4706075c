"""The roles: one list, created by the migration itself, restored after a flush."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.roles import CAPABILITIES, ROLES, roles_may

ROLES_MIGRATION = ("core", "0001_roles")


@pytest.mark.django_db(transaction=True)
def test_the_roles_migration_itself_creates_the_four_roles():
    # Unapplying the migration deletes the groups; reapplying it must create them again. The
    # executor sends no post_migrate, so the hook that restores roles after a flush cannot help.
    executor = MigrationExecutor(connection)
    executor.migrate([("core", None)])
    assert not Group.objects.filter(name__in=ROLES).exists()

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([ROLES_MIGRATION])

    assert set(Group.objects.values_list("name", flat=True)) == set(ROLES)


@pytest.mark.django_db(transaction=True)
def test_the_roles_come_back_after_a_database_flush():
    call_command("flush", interactive=False, verbosity=0)
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def test_every_capability_names_only_known_roles():
    assert all(set(roles) <= set(ROLES) for roles in CAPABILITIES.values())


def test_a_superuser_has_every_capability_and_no_role_has_none_granted():
    assert all(roles_may({"superuser"}, capability) for capability in CAPABILITIES)
    assert not any(roles_may(set(), capability) for capability in CAPABILITIES)
