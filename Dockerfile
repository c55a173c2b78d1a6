# syntax=docker/dockerfile:1
# One image for every semsearch service: web (gunicorn), Celery workers, beat and the migrate job.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEMSEARCH_DATA_DIR=/data \
    SEMSEARCH_STORAGE_ROOT=/data \
    HF_HOME=/cache/huggingface \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Tesseract's English language data for reading text in pictures (tesserocr's wheel bundles the engine itself).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

# The CPU build of torch first, from PyTorch's own index and for torch only (the default wheel bundles CUDA, several
# GB), at the version requirements.txt pins; then everything else from PyPI, which finds torch already satisfied.
# A GPU worker image swaps the first step for a CUDA build (see docs/operations.md).
COPY requirements.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu "$(grep -E '^torch==' requirements.txt)" \
    && pip install -r requirements.txt

COPY . .

# Static files are collected (and compressed by WhiteNoise) at build time; the throwaway data folder only exists
# because importing the settings creates one.
RUN SEMSEARCH_DATA_DIR=/tmp/build-data SECRET_KEY=collectstatic-only \
        python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build-data

# Run as a fixed non-root user. The folders exist with its ownership so that fresh named volumes mounted on them
# inherit it.
RUN groupadd --system --gid 1000 semsearch \
    && useradd --system --uid 1000 --gid semsearch --home-dir /app --shell /usr/sbin/nologin semsearch \
    && mkdir -p /data /cache/huggingface /tmp/prometheus \
    && chown -R semsearch:semsearch /data /cache /tmp/prometheus
USER semsearch

EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "semsearch_site.wsgi"]
