"""Uploads in the background while later steps run: a few threads and a bounded queue.

A step's results are queued once they are committed locally; the next steps start at once. The
queue is bounded, so a slow remote holds back the run (a step waits to queue its upload) rather
than letting finished results pile up in memory. At the end of the run :meth:`Uploads.finish`
waits for what is queued — unless the run was interrupted: then what has not started is dropped
(an object without its entry is harmless; an entry is written only after its objects).
"""

from __future__ import annotations

import queue
import threading

from mlbuild.cache.actions import ActionResult
from mlbuild.cache.objects import Objects
from mlbuild.cache.remote.remote import RemoteCache

_Item = tuple[str, ActionResult] | None


class Uploads:
    """Upload results to ``remote`` from ``objects`` with ``workers`` threads."""

    def __init__(
        self, remote: RemoteCache, objects: Objects, *, workers: int = 4, backlog: int = 8
    ) -> None:
        self.remote = remote
        self.objects = objects
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=backlog)
        self._workers = workers
        self._threads: list[threading.Thread] = []

    def submit(self, fingerprint: str, result: ActionResult) -> None:
        """Queue ``result`` for upload; waits while the queue is full."""
        if not self.remote.writable or not _worth_sharing(result):
            return
        if not self._threads:
            for number in range(self._workers):
                thread = threading.Thread(
                    target=self._work, name=f"mlbuild-upload-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        self._queue.put((fingerprint, result))

    def finish(self, *, cancel: bool = False) -> None:
        """Wait for the queued uploads (``cancel``: only those already started)."""
        if cancel:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._queue.task_done()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                fingerprint, result = item
                self.remote.upload(fingerprint, result, self.objects)
            except Exception as exc:  # a bug must not kill the thread and hang finish()
                self.remote.warn(
                    item[1].step if item else "", f"upload to {self.remote.shown} failed: {exc}"
                )
            finally:
                self._queue.task_done()


def _worth_sharing(result: ActionResult) -> bool:
    """Whether another machine can use ``result``: some output it can restore from the cache,
    or, for a step that writes no file, its kind's result (a test's verdict, a model check)."""
    if result.outs:
        return any(o.cached for o in result.outs.values())
    return bool(result.data)
