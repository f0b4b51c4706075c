"""The role groups. Their names come from core.roles, the one list of roles."""

from django.db import migrations

from core.roles import ROLES, ensure_roles


def create_roles(apps, schema_editor):
    ensure_roles(apps.get_model("auth", "Group"), using=schema_editor.connection.alias)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, remove_roles)]
