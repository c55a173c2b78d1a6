"""The catalogue: the Image model, ingestion (upload, URL, CSV, folder), safe decoding, thumbnails, admin."""
