"""Incidents: one tenant-owned object per real problem, grouped from anomalies.

- models (in ``results.models``): Incident, its members (anomalies) and its timeline (events);
- ``signals``: ``incident_changed``, the lifecycle hook (fired inside the transaction);
- ``grouping``: which anomalies belong together (pure);
- ``summary``: the one-line summary;
- ``lifecycle``: acknowledge, resolve, reopen (by hand or by the pipeline);
- ``build``: what the pipeline runs after aggregation (grouping, auto-resolve, "no data");
- ``origin``: the root-cause hint stored with an incident.
"""
