"""A registry as ``mlbuild publish`` uses it: what a tag holds now (read over the Registry HTTP API
v2, so nothing is pulled), and a push through the Docker engine, by digest.

Tags are immutable versions: a tag that holds an image with the same ``dev.mlbuild.content`` label
is the same model and the push is a no-op; other content under the tag is refused.

Credentials come from MLBUILD_REGISTRY_USER / MLBUILD_REGISTRY_PASSWORD, else from the Docker
config (``docker login``). They go to the registry and the engine's push only: never printed,
logged, recorded or passed to a build. A registry on localhost or 127.0.0.1 is spoken to over plain
HTTP, as the Docker engine does; any other over HTTPS.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.package.errors import RegistryError

USER_ENV = "MLBUILD_REGISTRY_USER"
PASSWORD_ENV = "MLBUILD_REGISTRY_PASSWORD"  # noqa: S105 - the variable's name, not a password
_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never shown, even in a traceback's locals
        return f"Credentials(username={self.username!r}, password='***')"


def credentials(registry: str) -> Credentials | None:
    """The registry's credentials: the environment's, else the Docker config's, else None."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return Credentials(user, password)
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        auths = json.loads(config.read_text(encoding="utf-8")).get("auths", {})
        encoded = auths.get(registry, {}).get("auth")
        if encoded:
            name, _, secret = base64.b64decode(encoded).decode().partition(":")
            return Credentials(name, secret)
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        pass
    return None


@dataclass(frozen=True)
class Tagged:
    digest: str  # of the manifest, as the registry names it
    labels: dict[str, str]


def _scheme(registry: str) -> str:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return "http" if host in ("localhost", "127.0.0.1", "[::1]") else "https"


class RegistryClient:
    """Reads of one registry's API, authenticated as the registry asks (Basic or a Bearer token)."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self.base = f"{_scheme(registry)}://{registry}"
        self.creds = credentials(registry)
        self._auth: str | None = None

    def tagged(self, repository: str, tag: str) -> Tagged | None:
        """The image ``repository:tag`` holds (digest and labels); None when there is no tag."""
        status, body, answer = self._get(
            f"/v2/{repository}/manifests/{tag}", {"Accept": _MANIFESTS}, repository
        )
        if status == 404:
            return None
        manifest = json.loads(body)
        config = manifest.get("config", {}).get("digest")
        if not isinstance(config, str):
            raise RegistryError(
                f"{self.registry}/{repository}:{tag} is not an image manifest mlbuild can read "
                "(a manifest list?); refusing to overwrite it"
            )
        manifest_answer = answer
        status, body, _ = self._get(f"/v2/{repository}/blobs/{config}", {}, repository)
        if status != 200:
            raise RegistryError(
                f"{self.registry}/{repository}:{tag}: its config blob answered {status}"
            )
        digest = manifest_answer.get("docker-content-digest", "")
        found = (json.loads(body).get("config") or {}).get("Labels") or {}
        return Tagged(digest, {str(k): str(v) for k, v in found.items()})

    def _get(
        self, path: str, headers: dict[str, str], repository: str
    ) -> tuple[int, bytes, dict[str, str]]:
        status, body, answer = self._request(path, headers)
        if status == 401:
            self._auth = self._authorize(answer.get("www-authenticate", ""), repository)
            status, body, answer = self._request(path, headers)
            if status == 401:
                raise self._refused()
        if status not in (200, 404):
            raise RegistryError(
                f"the registry {self.registry} answered {status} to GET {path}: "
                f"{body[:200].decode(errors='replace')}"
            )
        return status, body, answer

    def _request(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(self.base + path, headers=headers)  # noqa: S310 - http(s)
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                return response.status, response.read(), _lower(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), _lower(exc.headers)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(
                f"cannot reach the registry {self.registry} ({reason}); start it, or fix "
                "package.docker.registry in ml.yaml"
            ) from None

    def _authorize(self, challenge: str, repository: str) -> str:
        if self.creds is None:
            raise self._refused()
        if challenge.lower().startswith("basic"):
            pair = f"{self.creds.username}:{self.creds.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if challenge.lower().startswith("bearer"):
            fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            query = {"service": fields.get("service", ""), "scope": f"repository:{repository}:pull"}
            realm = fields.get("realm", "")
            if not realm.startswith(("https://", "http://")):
                raise self._refused()  # a token service is reached over HTTP(S) only
            url = realm + "?" + urllib.parse.urlencode(query)
            pair = f"{self.creds.username}:{self.creds.password}".encode()
            request = urllib.request.Request(  # noqa: S310 - the realm is http(s), checked above
                url, headers={"Authorization": "Basic " + base64.b64encode(pair).decode()}
            )
            try:
                with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                    answer = json.loads(response.read())
            except (urllib.error.URLError, OSError, ValueError):
                raise self._refused() from None
            token = answer.get("token") or answer.get("access_token")
            if not isinstance(token, str):
                raise self._refused()
            return f"Bearer {token}"
        raise self._refused()

    def _refused(self) -> RegistryError:
        if self.creds is None:
            how = "log in (`docker login REGISTRY`) or set MLBUILD_REGISTRY_USER and "
            how += "MLBUILD_REGISTRY_PASSWORD"
            return RegistryError(
                f"the registry {self.registry} needs credentials and none were found; "
                + how.replace("REGISTRY", self.registry)
            )
        return RegistryError(
            f"the registry {self.registry} refused the credentials of user "
            f"'{self.creds.username}'; check them (`docker login {self.registry}`, or "
            "MLBUILD_REGISTRY_USER and MLBUILD_REGISTRY_PASSWORD)"
        )


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def push(client: Any, image_id: str, registry: str, repository: str, tag: str) -> str:
    """Tag ``image_id`` as ``registry/repository:tag``, push it, and return its digest
    (``sha256:…``) as the registry reported it."""
    import docker

    target = f"{registry}/{repository}"
    creds = credentials(registry)
    auth = None if creds is None else {"username": creds.username, "password": creds.password}
    client.images.get(image_id).tag(target, tag)
    digest: str | None = None
    try:
        for chunk in client.api.push(target, tag, stream=True, decode=True, auth_config=auth):
            if "error" in chunk:
                detail = str(chunk.get("errorDetail", {}).get("message") or chunk["error"])
                raise _push_error(registry, detail)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                digest = aux["Digest"]
    except docker.errors.APIError as exc:
        raise _push_error(registry, str(exc.explanation)) from None
    finally:
        # the registry tag was only the push's means; the image keeps IMAGE:VERSION
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(f"{target}:{tag}", noprune=True)
    if digest is None:
        raise RegistryError(f"the push to {registry} reported no digest; see the engine's log")
    return digest


def _push_error(registry: str, detail: str) -> RegistryError:
    lowered = detail.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        return RegistryError(
            f"the registry {registry} refused the push ({detail.strip()[:200]}); log in "
            f"(`docker login {registry}`) or set MLBUILD_REGISTRY_USER and "
            "MLBUILD_REGISTRY_PASSWORD"
        )
    if "connection refused" in lowered or "no such host" in lowered or "dial tcp" in lowered:
        return RegistryError(
            f"cannot reach the registry {registry} ({detail.strip()[:200]}); start it, or fix "
            "package.docker.registry in ml.yaml"
        )
    return RegistryError(f"the push to {registry} failed: {detail.strip()[:300]}")
