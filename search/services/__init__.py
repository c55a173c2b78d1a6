"""Search services: business logic for embedding, indexing and searching (import the submodules directly)."""
