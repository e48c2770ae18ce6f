"""Concurrent database sessions for race tests, synchronised by events and by what the
server says a session is doing (waiting on a lock), never by sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection, connections


class Session(threading.Thread):
    """Runs ``work`` in a thread with a database connection of its own; keeps the
    server's process id of that connection, the error raised if any, and ``done``."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.pid: int | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            connection.ensure_connection()
            self.pid = connection.connection.info.backend_pid
            self.work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test through .error
            self.error = exc
        finally:
            self.done.set()
            connections.close_all()

    def waiting_on_a_lock_or_done(self) -> bool:
        """Asked from another session (the test's): PostgreSQL's view of this one."""
        if self.done.is_set():
            return True
        if self.pid is None:
            return False
        with connection.cursor() as cur:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.pid])
            return cur.fetchone() == ("Lock",)


def second_waits_for_first(first: Session, reached: threading.Event, second: Session, release: threading.Event) -> None:
    """The race every lock test plays: ``first`` runs until it sets ``reached`` (holding
    what it holds); ``second`` starts and runs until PostgreSQL shows it waiting on a lock
    (or it finished: the lock is missing); ``release`` lets ``first`` go on. Both joined,
    their errors raised."""
    from tests.polling import wait_for

    first.start()
    wait_for(lambda: reached.is_set() or first.done.is_set(), 60, "the first session to reach its point")
    second.start()
    wait_for(second.waiting_on_a_lock_or_done, 30, "the second session to wait on a lock (or to finish)")
    release.set()
    for session in (first, second):
        session.join(60)
        if session.error is not None:
            raise session.error
