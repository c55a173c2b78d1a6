"""Domain errors of the index."""

from __future__ import annotations

from core.errors import DomainError, ServiceUnavailableError


class SnapshotCorruptError(ServiceUnavailableError):
    """A snapshot file is missing, truncated or does not match its recorded checksum."""

    code = "snapshot_corrupt"


class VectorDimensionError(DomainError):
    """Query vectors do not have the dimension of the model's stored embeddings."""

    code = "vector_dimension_mismatch"
