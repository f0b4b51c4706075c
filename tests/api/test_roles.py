import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from api.permissions import ROLES


@pytest.mark.django_db
def test_the_four_roles_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


@pytest.mark.django_db(transaction=True)
def test_the_roles_come_back_after_a_database_flush():
    call_command("flush", interactive=False, verbosity=0)
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)
