"""Where a packaged model comes from, and the OCI labels that carry it on an image.

The model's registered version (``mlbuild model register``) is found by content: the latest
version of the model's name whose artifacts hold exactly the bytes the workspace's model is made
of. Its run gives the run id, commit, data versions and lock hash; without one, the workspace as
it is now gives what it can (commit, dirty flag, recipe and lock hashes) and the run id is empty.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field
from typing import Any

LABEL_PREFIX = "dev.mlbuild"


@dataclass(frozen=True)
class Provenance:
    model_name: str
    model_digest: str  # the content version of the artifacts and signature (serve's version)
    registered_version: int | None
    run_id: str | None
    commit: str | None
    branch: str | None
    dirty: bool | None
    recipe_hash: str | None
    lock_hash: str | None
    data_versions: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    mlbuild_version: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Provenance:
        return cls(**raw)

    @property
    def version(self) -> str:
        """The tag of an image of this model: the registered version, else its content digest."""
        if self.registered_version is not None:
            return str(self.registered_version)
        return self.model_digest

    def labels(self) -> dict[str, str]:
        created = datetime.datetime.fromtimestamp(self.created, tz=datetime.UTC)
        return {
            "org.opencontainers.image.created": created.isoformat(timespec="seconds"),
            "org.opencontainers.image.title": self.model_name,
            "org.opencontainers.image.version": self.version,
            "org.opencontainers.image.revision": self.commit or "",
            f"{LABEL_PREFIX}.git.dirty": _flag(self.dirty),
            f"{LABEL_PREFIX}.git.branch": self.branch or "",
            f"{LABEL_PREFIX}.run-id": self.run_id or "",
            f"{LABEL_PREFIX}.recipe-hash": self.recipe_hash or "",
            f"{LABEL_PREFIX}.model.name": self.model_name,
            f"{LABEL_PREFIX}.model.version": (
                "" if self.registered_version is None else str(self.registered_version)
            ),
            f"{LABEL_PREFIX}.model.digest": self.model_digest,
            f"{LABEL_PREFIX}.data-versions": json.dumps(self.data_versions, sort_keys=True),
            f"{LABEL_PREFIX}.lock-hash": self.lock_hash or "",
            f"{LABEL_PREFIX}.mlbuild-version": self.mlbuild_version,
        }


def _flag(value: bool | None) -> str:
    return "unknown" if value is None else str(value).lower()
