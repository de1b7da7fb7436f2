from rest_framework.routers import SimpleRouter

from .views import WaitlistEntryViewSet, WaitlistOfferViewSet

router = SimpleRouter()
# offers first: "waitlist/offers/" would otherwise read as an entry's id
router.register("waitlist/offers", WaitlistOfferViewSet, basename="waitlist-offer")
router.register("waitlist", WaitlistEntryViewSet, basename="waitlist-entry")

urlpatterns = router.urls
