"""The test suite's settings: the real ones, with a key for the tests (the real settings refuse to
start without one) and the throttles' counters in this process's memory rather than a shared Redis."""

import os

os.environ.setdefault("SECRET_KEY", "test-suite-only-key-4f1c9a7e2b6d8e0a3c5f7b9d1e3a5c7e9b1d3f5a7c9e")

from config.settings import *  # noqa: E402,F403

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
