"""billing's API under /api/v1/: each module registers its viewsets and paths."""

from rest_framework.routers import SimpleRouter

from . import charges, claims, money, reports

MODULES = (charges, claims, money, reports)

router = SimpleRouter()
for module in MODULES:
    module.register(router)

urlpatterns = [*(path for module in MODULES for path in module.paths), *router.urls]
