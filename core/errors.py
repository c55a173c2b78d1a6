"""Domain errors: failures a caller can understand and act on. The edge (``semsearch_site.errors``) turns them into
``{"detail", "code"}`` responses with their ``status_code``; the CLI prints their message on one line."""

from __future__ import annotations


class DomainError(Exception):
    """A failure the caller can understand and act on; ``status_code`` is the HTTP status at the edge."""

    status_code = 400
    code = "invalid"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"


class ServiceUnavailableError(DomainError):
    status_code = 503
    code = "unavailable"
