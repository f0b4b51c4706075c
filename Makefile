# The two commands: `make run` (demo server) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev demo worker browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet -e .

install-dev: $(PY)
	$(PIP) install --quiet -e ".[dev]"

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py load_demo

run: demo
	@echo ""
	@echo "IVIG lot-traceability service on http://$(HOST):$(PORT)/"
	@echo "  scan station   http://$(HOST):$(PORT)/scan/"
	@echo "  recall look-up http://$(HOST):$(PORT)/recall/"
	@echo "  infusion       http://$(HOST):$(PORT)/infusion/"
	@echo "  API docs       http://$(HOST):$(PORT)/api/docs/"
	@echo "  admin          http://$(HOST):$(PORT)/admin/"
	@echo "  logins (password demo-pass-2026): tech (technician), pharm (pharmacist), audit (auditor),"
	@echo "                                    recall (recall coordinator), nurse (nurse), admin (superuser)"
	@echo "  background worker for large exports (optional, needs REDIS_URL): make worker"
	@echo ""
	$(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	$(VENV)/bin/celery -A config worker -l info

# Headless Chromium for the browser tests comes from Debian's package, never from a download.
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
		( (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null )

# Both cores: pytest-xdist gives each worker its own test database (test_<name>_gw0, _gw1).
PYTEST_WORKERS ?= 2
test: install-dev browser
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 var
