from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("practitioners", views.PractitionerViewSet, basename="practitioner")
router.register("locations", views.LocationViewSet, basename="location")
router.register("specialties", views.SpecialtyViewSet, basename="specialty")
router.register("patients", views.PatientViewSet, basename="patient")
router.register(
    r"patients/(?P<patient_pk>[0-9]+)/coverages", views.CoverageViewSet, basename="coverage"
)
router.register("payers", views.PayerViewSet, basename="payer")
router.register("service-codes", views.ServiceCodeViewSet, basename="service-code")

urlpatterns = [
    path("me/patient/", views.MyPatientView.as_view(), name="me-patient"),
    path("me/export/", views.MyDataExportView.as_view(), name="me-export"),
    *router.urls,
]
