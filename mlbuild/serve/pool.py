"""The threads that run predictions off the event loop, and how many requests may wait for them.

The event loop reads requests and writes responses; decoding, the model's ``predict`` and encoding
run on one of ``threads`` threads, so health checks and ``/metrics`` answer while a model is slow.
At most ``threads + queue`` prediction requests are admitted at once (being read, waiting or
running); the next one is refused at once with a 503 rather than held in memory.

Threads are daemons: a ``predict`` that never returns cannot keep the process alive once the
server has stopped waiting for it (after the 30 s shutdown grace).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_Job = tuple[Callable[[Any], Any], Any, "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class PredictPool(Generic[T, R]):
    """Run ``handler(arg)`` on a pool thread; admission is counted on the event loop only."""

    def __init__(self, handler: Callable[[T], R], threads: int, queue_size: int) -> None:
        self.handler = handler
        self.threads = threads
        self.capacity = threads + queue_size
        self.admitted = 0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._started = False

    def admit(self) -> bool:
        """Count one more request in, unless the pool is full (then answer it 503)."""
        if self.admitted >= self.capacity:
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        self.admitted -= 1

    async def run(self, arg: T) -> R:
        """``handler(arg)`` on a pool thread; its exception, if any, is raised here."""
        if not self._started:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._jobs.put((self.handler, arg, future, loop))
        return await future

    def _start(self) -> None:
        # Started on first use, in the process that serves (uvicorn's workers are new processes).
        for number in range(self.threads):
            threading.Thread(target=self._work, name=f"predict-{number}", daemon=True).start()
        self._started = True

    def _work(self) -> None:
        while True:
            handler, arg, future, loop = self._jobs.get()
            if future.cancelled():  # the server gave up on it (shutdown grace over)
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = handler(arg)
            except Exception as exc:  # handed to the request that awaits it
                error = exc
            except BaseException as exc:  # SystemExit from a model must not stop the server
                error = RuntimeError(f"the handler raised {type(exc).__name__}")
                error.__cause__ = exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop has closed: nobody waits any more
                return


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
