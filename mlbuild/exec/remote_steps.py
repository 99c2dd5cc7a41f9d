"""The run's one hook into the remote cache: a remote hit is fetched (verified) before it is
restored, and what a step built is queued for upload once it is committed locally.

The planner looks a step up remotely after a local miss (``Decision.source == "remote"``); the
executor calls :meth:`RemoteSteps.fetched` after deciding, :meth:`RemoteSteps.built` after
committing, and :meth:`RemoteSteps.finish` at the end of the run. Without a remote each is a
no-op, so the executor needs no ``if``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlbuild.cache import ActionResult, Cache
from mlbuild.graph import Action, Decision

# the remote package (http.client, ssl) is imported only when a remote cache is used
if TYPE_CHECKING:
    from mlbuild.cache.remote import RemoteCache, RemoteReport, Uploads


class RemoteSteps:
    """``remote`` (or ``None``) as the steps of one run use it; warnings go to ``note``."""

    def __init__(
        self, remote: RemoteCache | None, cache: Cache, note: Callable[[str, str], None]
    ) -> None:
        self.remote = remote
        self.cache = cache
        self.uploads: Uploads | None = None
        if remote is not None:
            from mlbuild.cache.remote import Uploads

            self.uploads = Uploads(remote, cache.objects)
            remote.warn = note

    def fetched(self, step: str, decision: Decision, waiting: Callable[[str], None]) -> Decision:
        """``decision``, its remote result brought into the local cache with every object
        verified, so that it is restored like a local one; if that fails, the step runs."""
        if self.remote is None or decision.source != "remote" or decision.result is None:
            return decision
        assert decision.fingerprint is not None
        with self.cache.writing(waiting):  # gc must not collect between objects and entry
            problem = self.remote.fetch(decision.fingerprint, decision.result, self.cache, step)
        if problem is None:
            return decision
        return dataclasses.replace(decision, action=Action.RUN, reasons=[problem], result=None)

    def built(self, fingerprint: str, result: ActionResult) -> None:
        """Queue what a step built (committed locally) for upload; waits while the queue is
        full."""
        if self.uploads is not None:
            self.uploads.submit(fingerprint, result)

    def finish(self, *, cancelled: bool) -> RemoteReport | None:
        """Wait for the queued uploads (``cancelled``: only those already started); what was
        fetched and uploaded."""
        if self.uploads is not None:
            self.uploads.finish(cancel=cancelled)
        return self.remote.report if self.remote is not None else None
