"""billing's admin pages, one module per part of the revenue cycle (Django's admin discovery
imports this package)."""

from . import charges, claims, money, reports, visit_fees  # noqa: F401 (they register pages)
