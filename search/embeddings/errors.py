"""Domain errors of the embedding engine."""

from __future__ import annotations

from core.errors import DomainError, ServiceUnavailableError


class ModelUnavailableError(ServiceUnavailableError):
    """The configured embedding model cannot be loaded; the message names the setting and the alternatives."""

    code = "model_unavailable"


class ImageDecodeError(DomainError):
    """An image could not be decoded or preprocessed for embedding."""

    code = "invalid_image"
