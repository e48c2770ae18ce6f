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
# garbage collector's full passes: ingestion bodies make tens of thousands of
# containers, which would set off a full collection over the whole heap every few
# requests.
gc.freeze()
# Young collections too: at the default (one every 700 new containers) they run many
# times per ingestion body, each walking the body's live lists (decided by alternating
# bench/bench_ingest.py runs with and without; figures belong in docs/benchmarks.md).
gc.set_threshold(50_000, 20, 100)
