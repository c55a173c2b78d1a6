# Everyday actions. `make run` and `make test` are the two set-up commands in the README.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format demo worker migrate bench-embed bench-index bench-search bench-load bench-ingest bench-enrich clean-data compose-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

## Start the web server and a worker on http://127.0.0.1:8000 (embedded default: no configuration needed).
run: migrate
	$(BIN)/python manage.py serve

## Lint, then the whole suite twice: embedded default, then service mode (PostgreSQL + Redis + a real worker).
test: $(STAMP)
	$(MAKE) lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	bash scripts/test.sh

## ruff (lint + format), import-linter (the one-way layers, no cycles), mypy (django-stubs, drf-stubs).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	# mypy's Django plugin imports the settings (to learn the models); any key will do for that.
	SECRET_KEY=mypy-reads-the-settings-only $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Offline demo: the bundled tiny CLIP and a few hundred generated pictures.
demo: migrate
	SEMSEARCH_MODEL_ID=toy $(BIN)/python manage.py demo_import
	SEMSEARCH_MODEL_ID=toy $(BIN)/python manage.py serve

worker: $(STAMP)
	$(BIN)/celery -A semsearch_site worker --beat --loglevel INFO --queues embed,index,enrich,default

bench-embed: $(STAMP)
	$(BIN)/python bench/embed.py

bench-index: $(STAMP)
	$(BIN)/python bench/index.py

bench-search: $(STAMP)
	$(BIN)/python bench/search.py

bench-load: $(STAMP)
	$(BIN)/python bench/load.py

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-enrich: $(STAMP)
	$(BIN)/python bench/enrich.py

## Validate docker-compose.yml with .env.example (Compose v2 plugin, else Debian's docker-compose).
compose-check:
	SEMSEARCH_ENV_FILE=.env.example $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose) --env-file .env.example config --quiet
