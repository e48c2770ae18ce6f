from tests.integration.conftest import real_celery  # noqa: F401 - the real-worker fixture, shared
