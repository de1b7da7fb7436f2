"""The benchmark scenarios. Each module registers its scenarios with `bench.harness.scenario`;
every module of this package is imported, so a new scenario is a new module here (or a new
function in an existing one)."""

import importlib
import pkgutil


def load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
