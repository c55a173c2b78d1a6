"""Fixtures for the embedding engine: the bundled toy model, loaded once per test session (never trained here)."""

from __future__ import annotations

import pytest

from search.embeddings import Encoder


@pytest.fixture(scope="session")
def toy_encoder() -> Encoder:
    """The bundled tiny CLIP in fp32 on the CPU, so numeric comparisons are exact to float rounding."""
    return Encoder.load("toy", device="cpu", precision="fp32", batch_size=32)
