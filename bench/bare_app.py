"""The baseline: a bare ASGI app on uvicorn that parses an Open Inference Protocol body with orjson
and calls ``model.predict`` directly — no validation, no metrics, no routing beyond one path.

    MODEL=model.joblib uvicorn bench.bare_app:app --port 8000
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import orjson

MODEL = joblib.load(os.environ["MODEL"])


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await _reply(send, 200, b"{}")
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    tensor = orjson.loads(body)["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    labels = MODEL.predict(x)
    await _reply(send, 200, orjson.dumps({"outputs": [{"name": "label", "data": labels.tolist()}]}))


async def _reply(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
