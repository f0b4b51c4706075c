"""The nurse role (the administration record). Names come from core.roles, the one list of roles."""

from django.db import migrations

from core.roles import NURSE, ensure_roles


def create_roles(apps, schema_editor):
    ensure_roles(apps.get_model("auth", "Group"), using=schema_editor.connection.alias)


def remove_nurse(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=NURSE).delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0001_roles")]
    operations = [migrations.RunPython(create_roles, remove_nurse)]
