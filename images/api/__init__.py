"""The REST API for the catalogue: list, retrieve, upload, add by URL, delete (``/api/v1/images/``)."""
