"""The supervising provider (837P loop 2310D): an episode names who supervises the care, its
charges and claims carry them and their NPI (ten digits, a CHECK; the check digit by the
model's validator and the scrubber), and claims are batched by it."""

import django.db.models.deletion
import practice.validators
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('authorizations', '0004_authorization_requests'),
        ('billing', '0005_money_actions_provider_adjustments'),
        ('practice', '0012_conditions'),
        ('scheduling', '0009_closure'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='claim',
            name='supervising',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='practice.practitioner'),
        ),
        migrations.AddField(
            model_name='claim',
            name='supervising_npi',
            field=models.CharField(blank=True, help_text='2310D NM109.', max_length=10, validators=[practice.validators.validate_npi]),
        ),
        migrations.AddField(
            model_name='episode',
            name='supervising',
            field=models.ForeignKey(blank=True, help_text='Who supervises the care (e.g. the BCBA over an RBT): named on its charges and claims (837P 2310D).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='practice.practitioner'),
        ),
        migrations.AlterField(
            model_name='charge',
            name='rendering_npi',
            field=models.CharField(blank=True, max_length=10, validators=[practice.validators.validate_npi]),
        ),
        migrations.AlterField(
            model_name='charge',
            name='supervising_npi',
            field=models.CharField(blank=True, help_text="The supervising provider's NPI (837P 2310D), when a supervisor is named.", max_length=10, validators=[practice.validators.validate_npi]),
        ),
        migrations.AddConstraint(
            model_name='charge',
            constraint=models.CheckConstraint(condition=models.Q(('supervising_npi', ''), models.Q(('supervising__isnull', False), ('supervising_npi__regex', '^[0-9]{10}$')), _connector='OR'), name='charge_supervising_npi'),
        ),
        migrations.AddConstraint(
            model_name='claim',
            constraint=models.CheckConstraint(condition=models.Q(('supervising_npi', ''), models.Q(('supervising__isnull', False), ('supervising_npi__regex', '^[0-9]{10}$')), _connector='OR'), name='claim_supervising_npi'),
        ),
    ]
