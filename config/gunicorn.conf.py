"""gunicorn for production: `make serve`, or `gunicorn -c config/gunicorn.conf.py config.wsgi:application`.

Sync workers, two per core (the requests are short and mostly wait on the database); each worker
keeps its database connection open between requests (CONN_MAX_AGE in the settings). Environment:
GUNICORN_BIND (default 127.0.0.1:8000), GUNICORN_WORKERS, GUNICORN_TIMEOUT.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", 0)) or max(2, multiprocessing.cpu_count() * 2)
worker_class = "sync"
# A large history export is a background job; nothing synchronous should take this long.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = 30
# Recycle workers now and then so a slow leak cannot grow for ever; jitter keeps them from
# restarting together.
max_requests = 5000
max_requests_jitter = 500
# Import the project once in the master: workers fork with it loaded (faster start, shared memory).
# Django opens no database connection on import, so no connection is shared across the fork.
preload_app = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

