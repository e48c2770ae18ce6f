import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import resolve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Load the URL configuration (and with it every view module) now rather than on the
# first request, so that request is as fast as the rest...
resolve("/api/v1/metrics")
# ...and spare what is loaded by now, which lives as long as the process, the cyclic
# garbage collector's full passes. Ingestion bodies make tens of thousands of
# containers, which set off a full collection every few requests: over the whole heap
# one took ~65 ms, over what is left after freezing ~3 ms.
gc.freeze()
# Young collections too: the default (one every 700 new containers) ran ~15 times per
# 10,000-point body, each walking the body's live lists. Every 50,000: ingestion ~4 %
# faster (bench/bench_ingest.py, alternating runs with and without).
gc.set_threshold(50_000, 20, 100)
