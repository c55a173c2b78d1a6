"""The REST API for search and system status (``/api/v1/``)."""
