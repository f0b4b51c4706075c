# The two commands: `make run` (demo server) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test install install-dev demo worker beat browser clean

# The server refuses to start without a secret key (unless DEBUG=1). For the demo, one is made once
# and kept in var/secret_key; production sets SECRET_KEY or SECRET_KEY_FILE itself.
SECRET_KEY_FILE ?= var/secret_key
export SECRET_KEY_FILE

$(SECRET_KEY_FILE):
	@mkdir -p $(dir $@)
	@umask 077 && $(PYTHON) -c 'import secrets;print(secrets.token_urlsafe(50))' > $@

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet -e .

install-dev: $(PY)
	$(PIP) install --quiet -e ".[dev]"

demo: install $(SECRET_KEY_FILE)
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

worker: install $(SECRET_KEY_FILE)
	$(VENV)/bin/celery -A config worker -l info

# The scheduled checkpoints of the sealed history (AUDIT_CHECKPOINT_MINUTES); needs REDIS_URL.
beat: install
	$(VENV)/bin/celery -A config beat -l info

# Production serving: gunicorn (config/gunicorn.conf.py: two sync workers per core, persistent
# database connections) on PostgreSQL, static files through WhiteNoise after collectstatic.
SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ivig
serve: install $(SECRET_KEY_FILE)
	@url="$${DATABASE_URL:-$(SERVE_DATABASE_URL)}"; case "$$url" in postgres*) ;; \
		*) echo "make serve runs on PostgreSQL: set DATABASE_URL=postgres://…"; exit 2;; esac
	DATABASE_URL="$${DATABASE_URL:-$(SERVE_DATABASE_URL)}" $(PY) manage.py migrate --noinput
	DATABASE_URL="$${DATABASE_URL:-$(SERVE_DATABASE_URL)}" $(PY) manage.py collectstatic --noinput --verbosity 0
	DATABASE_URL="$${DATABASE_URL:-$(SERVE_DATABASE_URL)}" GUNICORN_BIND=$(HOST):$(PORT) \
		$(VENV)/bin/gunicorn -c config/gunicorn.conf.py config.wsgi:application

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
