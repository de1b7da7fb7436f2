"""Loaded at start-up by every Python process a test run starts (the run puts this folder on
PYTHONPATH): the process reads the run's clock, not the wall's (tests/clock.py)."""

import importlib.util
import os
from pathlib import Path

if os.environ.get("CLINIC_TEST_CLOCK"):
    _spec = importlib.util.spec_from_file_location(
        "_clinic_test_clock", Path(__file__).resolve().parent.parent / "clock.py"
    )
    _clock = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_clock)
    _clock.follow()
