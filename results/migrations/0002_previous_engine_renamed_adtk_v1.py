"""The default engine "adtk" is a new engine; what the previous one made keeps its name.

Anomalies and fitted states made under "adtk" were made by the engine now registered as
"adtk_v1", so they are renamed (history stays truthful; the new engine starts without a
state and fits once on the history it fetches). An engine setting that chose "adtk" with
parameters chose the previous engine's parameters and keeps it as "adtk_v1"; a plain
"adtk" setting follows the product's ADTK engine.
"""

from django.db import migrations

OLD, RENAMED = "adtk", "adtk_v1"


def _rows(apps, model):
    """Every tenant's rows (a system change: the plain base manager, not the scoped one)."""
    return apps.get_model("results", model)._base_manager


def forward(apps, schema_editor):
    for model in ("Anomaly", "EngineState"):
        _rows(apps, model).filter(engine=OLD).update(engine=RENAMED)
    _rows(apps, "EngineSetting").filter(engine=OLD).exclude(params={}).update(engine=RENAMED)


def backward(apps, schema_editor):
    _rows(apps, "EngineState").filter(engine=OLD).delete()  # the new engine's states
    for model in ("Anomaly", "EngineState", "EngineSetting"):
        _rows(apps, model).filter(engine=RENAMED).update(engine=OLD)


class Migration(migrations.Migration):
    dependencies = [("results", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
