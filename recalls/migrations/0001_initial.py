"""The recall models, taken over from traceability with their tables as they are (no database
change here); 0002 gives the tables this app's names."""

import django.db.models.deletion
import django.utils.timezone
import simple_history.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('inventory', '0001_initial'),
        ('traceability', '0003_recalls_move_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='HistoricalRecall',
                    fields=[
                        ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                        ('reference', models.CharField(db_index=True, help_text='Manufacturer or regulator number', max_length=80)),
                        ('source', models.CharField(choices=[('manufacturer', 'Manufacturer'), ('regulator', 'Regulator'), ('internal', 'Internal')], max_length=16)),
                        ('recall_class', models.CharField(choices=[('I', 'I'), ('II', 'Ii'), ('III', 'Iii')], max_length=3)),
                        ('reason', models.TextField()),
                        ('recall_date', models.DateField()),
                        ('status', models.CharField(choices=[('open', 'Open'), ('closed', 'Closed')], default='open', max_length=8)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('closed_at', models.DateTimeField(blank=True, null=True)),
                        ('close_reason', models.TextField(blank=True)),
                        ('unmatched_lot_numbers', models.JSONField(blank=True, default=list)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.CharField(max_length=100, null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('closed_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('created_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'historical recall',
                        'verbose_name_plural': 'historical recalls',
                        'db_table': 'traceability_historicalrecall',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='Recall',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('reference', models.CharField(help_text='Manufacturer or regulator number', max_length=80, unique=True)),
                        ('source', models.CharField(choices=[('manufacturer', 'Manufacturer'), ('regulator', 'Regulator'), ('internal', 'Internal')], max_length=16)),
                        ('recall_class', models.CharField(choices=[('I', 'I'), ('II', 'Ii'), ('III', 'Iii')], max_length=3)),
                        ('reason', models.TextField()),
                        ('recall_date', models.DateField()),
                        ('status', models.CharField(choices=[('open', 'Open'), ('closed', 'Closed')], default='open', max_length=8)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('closed_at', models.DateTimeField(blank=True, null=True)),
                        ('close_reason', models.TextField(blank=True)),
                        ('unmatched_lot_numbers', models.JSONField(blank=True, default=list)),
                        ('closed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'traceability_recall',
                        'ordering': ['-recall_date', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='HistoricalRecallLot',
                    fields=[
                        ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.CharField(max_length=100, null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('lot', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='inventory.lot')),
                        ('recall', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='recalls.recall')),
                    ],
                    options={
                        'verbose_name': 'historical recall lot',
                        'verbose_name_plural': 'historical recall lots',
                        'db_table': 'traceability_historicalrecalllot',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='HistoricalNotificationTask',
                    fields=[
                        ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('contacted', 'Contacted'), ('unreachable', 'Unreachable'), ('not_required', 'not required')], default='pending', max_length=16)),
                        ('note', models.TextField(blank=True)),
                        ('updated_at', models.DateTimeField(blank=True, null=True)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.CharField(max_length=100, null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('patient', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='traceability.patient')),
                        ('updated_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('recall', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='recalls.recall')),
                    ],
                    options={
                        'verbose_name': 'historical notification task',
                        'verbose_name_plural': 'historical notification tasks',
                        'db_table': 'traceability_historicalnotificationtask',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='RecallLot',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('lot', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recall_lots', to='inventory.lot')),
                        ('recall', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recall_lots', to='recalls.recall')),
                    ],
                    options={
                        'db_table': 'traceability_recalllot',
                    },
                ),
                migrations.AddField(
                    model_name='recall',
                    name='lots',
                    field=models.ManyToManyField(related_name='recalls', through='recalls.RecallLot', to='inventory.lot'),
                ),
                migrations.CreateModel(
                    name='NotificationTask',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('contacted', 'Contacted'), ('unreachable', 'Unreachable'), ('not_required', 'not required')], default='pending', max_length=16)),
                        ('note', models.TextField(blank=True)),
                        ('updated_at', models.DateTimeField(blank=True, null=True)),
                        ('patient', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recall_notifications', to='traceability.patient')),
                        ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('vials', models.ManyToManyField(blank=True, related_name='+', to='inventory.vial')),
                        ('recall', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='notifications', to='recalls.recall')),
                    ],
                    options={
                        'db_table': 'traceability_notificationtask',
                        'ordering': ['recall', 'patient__name'],
                        'constraints': [models.UniqueConstraint(fields=('recall', 'patient'), name='notification_once_per_patient')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='recalllot',
                    constraint=models.UniqueConstraint(fields=('recall', 'lot'), name='recall_lot_once'),
                ),
            ],
        ),
    ]
