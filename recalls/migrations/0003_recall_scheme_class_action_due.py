"""Recall scheme (FDA or MHRA), the classes each uses (FDA I/II/III, market withdrawal; MHRA 1-4;
not yet classified) and the action deadline.

Existing recalls were all FDA-classified (I, II or III): they take scheme "fda" by the field's
default and stay valid under the new constraint; their action deadline stays empty, as FDA
classes imply none."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recalls', '0002_tables_renamed'),
    ]

    operations = [
        migrations.AddField(
            model_name='historicalrecall',
            name='action_due',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='historicalrecall',
            name='scheme',
            field=models.CharField(choices=[('fda', 'FDA'), ('mhra', 'MHRA')], default='fda', max_length=8),
        ),
        migrations.AddField(
            model_name='recall',
            name='action_due',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='recall',
            name='scheme',
            field=models.CharField(choices=[('fda', 'FDA'), ('mhra', 'MHRA')], default='fda', max_length=8),
        ),
        migrations.AlterField(
            model_name='historicalrecall',
            name='recall_class',
            field=models.CharField(choices=[('I', 'class I'), ('II', 'class II'), ('III', 'class III'), ('market_withdrawal', 'market withdrawal'), ('1', 'class 1'), ('2', 'class 2'), ('3', 'class 3'), ('4', 'class 4'), ('unclassified', 'not yet classified')], max_length=20),
        ),
        migrations.AlterField(
            model_name='recall',
            name='recall_class',
            field=models.CharField(choices=[('I', 'class I'), ('II', 'class II'), ('III', 'class III'), ('market_withdrawal', 'market withdrawal'), ('1', 'class 1'), ('2', 'class 2'), ('3', 'class 3'), ('4', 'class 4'), ('unclassified', 'not yet classified')], max_length=20),
        ),
        migrations.AddConstraint(
            model_name='recall',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('recall_class__in', ['I', 'II', 'III', 'market_withdrawal', 'unclassified']), ('scheme', 'fda')), models.Q(('recall_class__in', ['1', '2', '3', '4', 'unclassified']), ('scheme', 'mhra')), _connector='OR'), name='recall_class_of_its_scheme'),
        ),
    ]
