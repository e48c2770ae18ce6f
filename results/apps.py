from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ResultsConfig(AppConfig):
    name = "results"

    def ready(self):
        # Imported here, as Django documents: the receivers' module imports models, which
        # cannot load while the app registry is still being populated.
        from results import incident_notifications, signals
        from results.incidents.signals import incident_changed

        post_migrate.connect(signals.install_system_schedules, sender=self)
        incident_changed.connect(incident_notifications.incident_changed, dispatch_uid="notifications-outbox")
