from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self):
        # Imported once the apps are loaded, where drf-spectacular's extensions are meant
        # to be registered (the module is only imported for that side effect).
        from tenants import schema  # noqa: F401
