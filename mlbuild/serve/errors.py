"""The client's mistakes: what the server answers with a 4xx (or a 503 when it is too busy)."""

from __future__ import annotations


class InvalidInput(Exception):
    """A request the server refuses: ``status`` is the HTTP status to answer, ``message`` says
    which field is wrong and what was expected, ``headers`` go with the response."""

    def __init__(
        self, message: str, status: int = 400, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers
