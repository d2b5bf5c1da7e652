"""Session logging off the UI thread.

The store's logger writes synchronously and, when another process holds the SQLite database, waits for
the lock (seconds, up to its deadline) before keeping events in memory. :class:`BackgroundLog` hands
events to one worker thread in order, so napari never waits on the database; ``flush``/``close`` drain it.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref

log = logging.getLogger(__name__)

_STOP = object()


class BackgroundLog:
    """``listener(event)`` for a RefinementSession that forwards events to ``logger`` on a worker thread.

    on_error(exc): called (on the worker thread) when the logger rejects an event (StoreError for invalid
    input; database failures never raise, the logger keeps those events in memory).
    """

    def __init__(self, logger, on_error=None):
        self.logger = logger
        self.on_error = on_error
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rrsis-session-log", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: (ref() is not None and ref().close(timeout_s=30.0)))

    def __call__(self, event) -> None:
        if self._closed:
            raise RuntimeError("this session log is closed")
        self._queue.put(event)

    def on_status(self, callback) -> None:
        if hasattr(self.logger, "on_status"):
            self.logger.on_status(callback)

    @property
    def pending(self) -> int:
        """Events not yet handed to the store's logger."""
        return self._queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is _STOP:
                    return
                self.logger(event)
            except Exception as exc:  # never let the worker die: later events must still be logged
                log.warning("session log rejected %s: %s", type(event).__name__, exc)
                if self.on_error is not None:
                    try:
                        self.on_error(exc)
                    except Exception:  # pragma: no cover - UI callback failure
                        log.exception("session log error callback failed")
            finally:
                self._queue.task_done()

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued event reached the store's logger; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def flush(self, timeout_s: float | None = None) -> bool:
        """Drain the queue and ask the logger to write what it holds; True when everything is saved."""
        return self.drain(timeout_s) and bool(self.logger.flush())

    def close(self, timeout_s: float | None = None) -> bool:
        """Drain, stop the worker and close the store's session (marks it ended)."""
        if self._closed:
            return True
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        return bool(self.logger.close())
