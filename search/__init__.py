"""Embeddings, Faiss index snapshots, query parsing, search services, the web UI, REST and Python APIs."""
