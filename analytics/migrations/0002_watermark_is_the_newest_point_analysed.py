"""The detection watermark (``Series.analysed_until``) becomes the newest point analysed,
so it can never pass the series' data; it was the end of the last run's range, which an
end in the future (e.g. ``POST /detect`` with an end in 2126) moved there for good.

Existing watermarks heal:
- one in the future (past this migration's now) is cleared: the next periodic run then
  analyses the first-run look-back (FLEETWATCH_FIRST_RUN_LOOKBACK_HOURS), so the points
  ingested since that run are analysed, not skipped (anomalies already stored upsert);
- one of a series with no point is cleared;
- any other moves from "every point before it was analysed" to "the newest point
  analysed": one microsecond earlier (timestamps are microseconds), and never past the
  series' newest point.
"""

from datetime import timedelta

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Least
from django.utils import timezone


def heal(apps, schema_editor):
    watermarked = apps.get_model("analytics", "Series")._base_manager.exclude(analysed_until=None)  # every tenant's
    watermarked.filter(analysed_until__gt=timezone.now()).update(analysed_until=None)
    watermarked.filter(last_point_at=None).update(analysed_until=None)
    watermarked.update(analysed_until=Least(F("analysed_until") - timedelta(microseconds=1), F("last_point_at")))


def unheal(apps, schema_editor):
    watermarked = apps.get_model("analytics", "Series")._base_manager.exclude(analysed_until=None)
    watermarked.update(analysed_until=F("analysed_until") + timedelta(microseconds=1))


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="series",
            name="analysed_until",
            field=models.DateTimeField(
                blank=True, help_text="Detection watermark: the newest point analysed (never past the newest point).", null=True
            ),
        ),
        migrations.RunPython(heal, unheal),
    ]
