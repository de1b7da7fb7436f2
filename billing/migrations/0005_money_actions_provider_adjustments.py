"""Billers' transfers and write-offs carry an idempotency key and a write-off reason; an 835's
provider-level adjustments (PLB) are posted to their own append-only ledger (guarded by the
ledger's trigger function of 0002), which replaces the list the remittance kept of them."""

import datetime
from decimal import Decimal

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

APPEND_ONLY = """
CREATE TRIGGER billing_provider_adjustment_append_only
    BEFORE UPDATE OR DELETE ON billing_provideradjustment
    FOR EACH ROW EXECUTE FUNCTION public.billing_ledger_guard();
"""
DROP = "DROP TRIGGER billing_provider_adjustment_append_only ON billing_provideradjustment;"


def kept_to_rows(apps, schema_editor) -> None:
    """The adjustments remittances kept as a list become rows (their segment unknown: 0)."""
    Remittance = apps.get_model("billing", "Remittance")
    ProviderAdjustment = apps.get_model("billing", "ProviderAdjustment")
    rows = [
        ProviderAdjustment(
            remittance_id=remittance.pk,
            payer_id=remittance.payer_id,
            provider=kept.get("provider", "")[:50],
            reason=kept["reason"],
            reference=kept.get("reference", "")[:50],
            amount=Decimal(kept["amount"]),
            segment=0,
            posted_on=remittance.posted_at.date(),
            created_by_id=remittance.posted_by_id,
        )
        for remittance in Remittance.objects.exclude(provider_adjustments=[])
        for kept in remittance.provider_adjustments
        if Decimal(kept["amount"]) != 0
    ]
    ProviderAdjustment.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_charge_balance"),
        ("practice", "0011_intake_insurance_guardians_consents"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ProviderAdjustment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "provider",
                    models.CharField(
                        help_text="PLB01: the provider's id (NPI or TIN).", max_length=50
                    ),
                ),
                ("fiscal_period", models.DateField(blank=True, help_text="PLB02.", null=True)),
                (
                    "reason",
                    models.CharField(help_text="PLB03-1, e.g. WO, L6, FB, 72.", max_length=2),
                ),
                (
                    "reference",
                    models.CharField(
                        blank=True,
                        help_text="PLB03-2: e.g. the claim a recoupment is for.",
                        max_length=50,
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                (
                    "segment",
                    models.PositiveIntegerField(help_text="The PLB's segment number in its file."),
                ),
                ("posted_on", models.DateField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["remittance_id", "id"],
            },
        ),
        migrations.AddField(
            model_name="ledgerentry",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=100, null=True),
        ),
        migrations.AddField(
            model_name="ledgerentry",
            name="write_off_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("contractual", "Contractual (beyond the payer's allowed amount)"),
                    ("timely_filing", "Timely filing limit missed"),
                    ("authorization", "No authorization (not billable to the patient)"),
                    ("small_balance", "Small balance"),
                    ("bad_debt", "Bad debt (sent to collections or uncollectable)"),
                    ("charity", "Charity care / financial hardship"),
                    ("courtesy", "Courtesy (administrative)"),
                ],
                db_default="",
                default="",
                help_text="Why a biller wrote the amount off (a manual adjustment).",
                max_length=14,
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key__isnull", False)),
                fields=("idempotency_key", "party"),
                name="ledger_idempotency_key_per_party",
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("write_off_reason", ""), ("kind", "adjustment"), _connector="OR"
                ),
                name="ledger_write_off_reason_on_adjustment",
            ),
        ),
        migrations.AddField(
            model_name="provideradjustment",
            name="claim",
            field=models.ForeignKey(
                blank=True,
                help_text="Our claim the reference names, when it names one.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="provider_adjustments",
                to="billing.claim",
            ),
        ),
        migrations.AddField(
            model_name="provideradjustment",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="provideradjustment",
            name="payer",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="provider_entries",
                to="practice.payer",
            ),
        ),
        migrations.AddField(
            model_name="provideradjustment",
            name="remittance",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="provider_entries",
                to="billing.remittance",
            ),
        ),
        migrations.AddIndex(
            model_name="provideradjustment",
            index=models.Index(fields=["payer", "posted_on"], name="provider_adjustment_payer"),
        ),
        migrations.AddConstraint(
            model_name="provideradjustment",
            constraint=models.CheckConstraint(
                condition=models.Q(("amount", 0), _negated=True),
                name="provider_adjustment_amount_non_zero",
            ),
        ),
        migrations.AddConstraint(
            model_name="provideradjustment",
            constraint=models.CheckConstraint(
                condition=models.Q(("reason__regex", "^[0-9A-Z]{2}$")),
                name="provider_adjustment_reason",
            ),
        ),
        migrations.AddConstraint(
            model_name="provideradjustment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("posted_on__gte", datetime.date(1900, 1, 1)),
                    ("posted_on__lte", datetime.date(2200, 12, 31)),
                ),
                name="provider_adjustment_posted_on_range",
            ),
        ),
        migrations.RunSQL(APPEND_ONLY, DROP),
        migrations.RunPython(kept_to_rows, migrations.RunPython.noop),
        migrations.RemoveField(model_name="remittance", name="provider_adjustments"),
    ]
