"""Production settings: the environment-driven base plus HTTPS and hardening.

DJANGO_SETTINGS_MODULE=config.settings_production. TLS ends at a proxy (load balancer)
that sets X-Forwarded-Proto; DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS are required.
`python manage.py check --deploy --fail-level WARNING` passes with these settings
(tests/security/test_deploy_check.py).
"""

import os

from config.env import ConfigError, env_bool, env_int
from config.settings import *  # noqa: F403  (production = the defaults + the overrides below)

DEBUG = False
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ConfigError("DJANGO_SECRET_KEY: required in production, at least 50 characters of random text")
if not os.environ.get("DJANGO_ALLOWED_HOSTS"):
    raise ConfigError("DJANGO_ALLOWED_HOSTS: required in production (comma-separated host names)")

# HTTPS behind a proxy that terminates TLS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
CSRF_TRUSTED_ORIGINS = [f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS if host != "*"]  # noqa: F405
