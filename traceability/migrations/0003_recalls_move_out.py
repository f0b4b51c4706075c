"""Recall records move to their own app (recalls). Only Django's picture of the models changes
here: the tables stay, and recalls 0001 takes them over; recalls 0002 renames them."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('traceability', '0002_recall_unmatched_lot_numbers'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='historicalrecall',
                    name='closed_by',
                ),
                migrations.RemoveField(
                    model_name='historicalrecall',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='historicalrecall',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalrecalllot',
                    name='history_user',
                ),
                migrations.RemoveField(
                    model_name='historicalrecalllot',
                    name='lot',
                ),
                migrations.RemoveField(
                    model_name='historicalrecalllot',
                    name='recall',
                ),
                migrations.RemoveField(
                    model_name='notificationtask',
                    name='patient',
                ),
                migrations.RemoveField(
                    model_name='notificationtask',
                    name='recall',
                ),
                migrations.RemoveField(
                    model_name='notificationtask',
                    name='updated_by',
                ),
                migrations.RemoveField(
                    model_name='notificationtask',
                    name='vials',
                ),
                migrations.RemoveField(
                    model_name='recall',
                    name='closed_by',
                ),
                migrations.RemoveField(
                    model_name='recall',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='recall',
                    name='lots',
                ),
                migrations.RemoveField(
                    model_name='recalllot',
                    name='recall',
                ),
                migrations.RemoveField(
                    model_name='recalllot',
                    name='lot',
                ),
                migrations.DeleteModel(
                    name='HistoricalNotificationTask',
                ),
                migrations.DeleteModel(
                    name='HistoricalRecall',
                ),
                migrations.DeleteModel(
                    name='HistoricalRecallLot',
                ),
                migrations.DeleteModel(
                    name='NotificationTask',
                ),
                migrations.DeleteModel(
                    name='Recall',
                ),
                migrations.DeleteModel(
                    name='RecallLot',
                ),
            ],
        ),
    ]
