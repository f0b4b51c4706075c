"""The recall tables take this app's names, and the content types (admin log, permissions) follow
the models to their new app."""

from django.db import migrations


MOVED = ["recall", "recalllot", "notificationtask", "historicalrecall", "historicalrecalllot", "historicalnotificationtask"]


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if not ContentType.objects.using(db).filter(app_label="recalls", model=model).exists():
            ContentType.objects.using(db).filter(app_label="traceability", model=model).update(app_label="recalls")


def move_content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if not ContentType.objects.using(db).filter(app_label="traceability", model=model).exists():
            ContentType.objects.using(db).filter(app_label="recalls", model=model).update(app_label="traceability")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ('recalls', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelTable(
            name='historicalnotificationtask',
            table=None,
        ),
        migrations.AlterModelTable(
            name='historicalrecall',
            table=None,
        ),
        migrations.AlterModelTable(
            name='historicalrecalllot',
            table=None,
        ),
        migrations.AlterModelTable(
            name='notificationtask',
            table=None,
        ),
        migrations.AlterModelTable(
            name='recall',
            table=None,
        ),
        migrations.AlterModelTable(
            name='recalllot',
            table=None,
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
