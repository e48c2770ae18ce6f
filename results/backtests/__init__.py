"""Backtests: replay a tenant's stored history through an engine configuration and score
it against the tenant's labels (``replay``: one series; ``report``: the parts combined;
``runner``: create, run a part, finish, apply; ``tasks``: on Celery)."""
