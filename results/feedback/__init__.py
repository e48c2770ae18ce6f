"""Feedback that teaches the detector: labels on anomalies (``labels``), the adjustments
they cause (``rules``: a raised threshold after repeated false alarms, a recurring
exception after "expected" labels), what a run uses for each series (``effective``),
the audit trail (``audit``) and labelled windows for the evaluation harness (``export``)."""
