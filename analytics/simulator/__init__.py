"""Fleet simulator: a deterministic, labelled fleet of node metrics (no Django).

- ``spec``: what a fleet is made of (``FleetSpec``, metric models, series keys, series,
  labelled anomalies and the anomaly kinds);
- ``randomness``: the keyed random streams every draw comes from;
- ``fleet``: the model and generator (``generate(spec)`` -> ``Fleet``: series on demand
  and their ground truth);
- ``export``: the ground truth as JSON and the fleet in NAB layout;
- ``sender``: ingestion bodies, history and live sending, the HTTP sender.
"""
