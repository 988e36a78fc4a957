# Review Console: `make run` starts the product, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
# The settings refuse to start without SECRET_KEY: `make run` makes one on first use and keeps it here.
SECRET_KEY_FILE := var/secret-key

.PHONY: install chromium axe run serve test lint bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Browser tests use Debian's Chromium; Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# axe-core for the accessibility browser tests, from the npm registry at the version tests/browser/package-lock.json
# pins (needs Node and npm); installed again only when the lock file changes.
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	@touch $@

axe: $(AXE)

test: lint chromium axe
	$(PY) -m pytest

$(SECRET_KEY_FILE):
	@mkdir -p $(dir $@)
	@(umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(50))' > $@)

# Web server on http://127.0.0.1:8000 and one django-q2 worker; Ctrl-C stops both.
# A SECRET_KEY in the environment wins over the kept one.
run: private export SECRET_KEY ?= $(shell cat $(SECRET_KEY_FILE) 2>/dev/null)
run: install $(SECRET_KEY_FILE)
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py seed_demo
	@trap 'kill 0' EXIT; \
	$(PY) manage.py qcluster & \
	$(PY) manage.py runserver 127.0.0.1:8000 --insecure --noreload

# Production (README, "Production"): migrate, collect static files, then gunicorn and WORKERS qcluster processes;
# Ctrl-C or SIGTERM stops them all. Set SECRET_KEY (the same on every machine); else the kept one is used.
serve: private export SECRET_KEY ?= $(shell cat $(SECRET_KEY_FILE) 2>/dev/null)
serve: install $(SECRET_KEY_FILE)
	$(PY) manage.py serve

# Every benchmark in --quick mode, then a summary against DESIGN.md's targets: several minutes on 2 cores (more the
# first time). Needs the local PostgreSQL, and Redis on 127.0.0.1:6379 for the Redis figures; see bench/run_all.py -h.
bench: install
	$(PY) bench/run_all.py --quick

clean:
	rm -rf $(VENV) var/*.sqlite3* db.sqlite3*
