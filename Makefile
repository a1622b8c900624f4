# Do It Online Assist: `make run` starts the demo, `make test` runs every test.
# Both set up what they need first (virtual environment, Python and npm packages, assets).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The services pass of `make test` uses these; .ci/run and the README say how to get them.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# Tests run in parallel processes (pytest-xdist), one a core and at most four: each has its
# own test database, channel-layer prefix and browsers. TEST_WORKERS=0 runs everything in
# this process.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest --numprocesses=$(TEST_WORKERS) --maxprocesses=4

ASSETS := build/static/council/css/council.css build/static/chat/css/widget.css \
	build/static/vendor/govuk-frontend/govuk-frontend.min.js build/static/vendor/rrweb/rrweb.js

.PHONY: setup run test test-embedded test-services test-fast lint format assets clean

setup: $(VENV)/.installed node_modules/.installed $(ASSETS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

assets: $(ASSETS)

build/static/council/css/council.css: config/assets/council.scss chat/assets/_log.scss node_modules/.installed
	mkdir -p $(dir $@)
	npx sass --load-path=node_modules --load-path=. --no-source-map --style=compressed --quiet-deps $< $@

# GOV.UK Frontend scoped under .dioa-chat for council sites that embed the widget. Sass
# scopes `:root` too, where the custom properties must sit on the widget itself. GOV.UK's
# sizes are in rem, which follows the host page's root font size (many sites shrink it to
# 62.5 % for their own arithmetic): each becomes a multiple of --dioa-rem, which widget.js
# sets to the browser's own text size where the page's root differs from it.
build/static/chat/css/widget.css: chat/assets/widget.scss chat/assets/_log.scss node_modules/.installed
	mkdir -p $(dir $@)
	npx sass --load-path=node_modules --load-path=. --no-source-map --style=compressed --quiet-deps $< $@
	sed -i -E 's/\.dioa-chat\.dioa-chat :root/.dioa-chat.dioa-chat/g; s/(-?[0-9]*\.?[0-9]+)rem/calc(\1*var(--dioa-rem,1rem))/g' $@

build/static/vendor/govuk-frontend/govuk-frontend.min.js: node_modules/.installed
	rm -rf build/static/vendor/govuk-frontend
	mkdir -p build/static/vendor/govuk-frontend
	cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js build/static/vendor/govuk-frontend/
	cp -r node_modules/govuk-frontend/dist/govuk/assets build/static/vendor/govuk-frontend/assets

# rrweb records the resident's page and replays it in the console (co-browse); an ES module,
# loaded only when sharing starts.
build/static/vendor/rrweb/rrweb.js: node_modules/.installed
	rm -rf build/static/vendor/rrweb
	mkdir -p build/static/vendor/rrweb
	cp node_modules/rrweb/dist/rrweb.js node_modules/rrweb/dist/rrweb.js.map node_modules/rrweb/dist/style.css build/static/vendor/rrweb/

# Daphne serves the site; beside it the sweeper ends unanswered and abandoned chats.
run: setup
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 $(BIN)/python manage.py demo_data --base-url http://$(HOST):$(PORT)
	DJANGO_DEBUG=1 $(BIN)/python manage.py assist_sweep --every 30 & sweeper=$$!; \
	trap 'kill $$sweeper 2>/dev/null' EXIT INT TERM; \
	DJANGO_DEBUG=1 $(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

# Two passes: the embedded defaults (SQLite, in-memory layer), then real PostgreSQL and
# Redis. The browser tests run once, in the second pass, on the real services; only when
# those are missing do they run in the first. Without the services the second pass is
# skipped with a message, except under CI=true, where a missing service fails the run.
test: setup
	@if $(BIN)/python -m tests.services_available "$(TEST_DATABASE_URL)" "$(TEST_REDIS_URL)"; then \
		$(MAKE) --no-print-directory test-embedded EMBEDDED_MARKERS="not services and not browser" && \
		$(MAKE) --no-print-directory test-services; \
	else \
		$(MAKE) --no-print-directory test-embedded && $(MAKE) --no-print-directory test-services; \
	fi

EMBEDDED_MARKERS ?= not services

test-embedded: setup
	@echo "== make test: pass 1 of 2, SQLite and the in-memory channel layer ($(EMBEDDED_MARKERS))"
	env -u DATABASE_URL -u REDIS_URL $(PYTEST) -m "$(EMBEDDED_MARKERS)"

test-services: setup
	@echo "== make test: pass 2 of 2, PostgreSQL and Redis"
	@if $(BIN)/python -m tests.services_available "$(TEST_DATABASE_URL)" "$(TEST_REDIS_URL)"; then \
		DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(PYTEST); \
	elif [ "$$CI" = "true" ]; then \
		echo "CI: PostgreSQL or Redis is not reachable; the services pass must run." >&2; exit 1; \
	else \
		echo "SKIPPED pass 2: PostgreSQL ($(TEST_DATABASE_URL)) or Redis ($(TEST_REDIS_URL)) is not reachable."; \
	fi

# A quicker local loop: no browser tests, embedded services only.
test-fast: setup
	env -u DATABASE_URL -u REDIS_URL $(PYTEST) -m "not services and not browser"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf build staticfiles test-db.sqlite3*
