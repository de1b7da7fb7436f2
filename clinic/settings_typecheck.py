"""The settings mypy loads (pyproject's [tool.django-stubs]): the app's own, with DEBUG on.

django-stubs imports the settings module to learn the models; with DEBUG=0 that import refuses
to run without keys (clinic/keys.py), and type checking must not need any secret."""

import os

os.environ["DEBUG"] = "1"

from clinic.settings import *  # noqa: E402, F403
