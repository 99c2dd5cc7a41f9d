"""``mlbuild search dashboard NAME``: optuna-dashboard on the study's storage."""

from __future__ import annotations

from collections.abc import Callable

from mlbuild.extras import require
from mlbuild.search.study import open_storage


def serve_dashboard(url: str, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve optuna-dashboard for the storage at ``url`` until Ctrl-C."""
    dashboard = require("optuna_dashboard", "search", "mlbuild search dashboard")
    storage = open_storage(url, workers=False)
    on_ready(f"http://{host}:{port}/")
    dashboard.run_server(storage, host=host, port=port)
