"""The production settings plus the ceiling view (bench/urls.py): the servers the benchmarks
start use these, so `/bench/ceiling/` exists only while a benchmark runs, never in production."""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
