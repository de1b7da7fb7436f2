from django.urls import path
from rest_framework.routers import SimpleRouter

from . import availability, smart_bookings, views

router = SimpleRouter()
router.register("appointments", views.AppointmentViewSet, basename="appointment")
router.register("appointment-series", views.SeriesViewSet, basename="appointment-series")
router.register("appointment-types", views.AppointmentTypeViewSet, basename="appointment-type")
router.register("working-hours", views.WorkingHoursViewSet, basename="working-hours")
router.register("time-off", views.TimeOffViewSet, basename="time-off")
router.register("closures", views.ClosureViewSet, basename="closure")
router.register(
    r"patients/(?P<patient_id>\d+)/appointments",
    views.PatientAppointmentsView,
    basename="patient-appointments",
)
router.register("smart-bookings", smart_bookings.SmartBookingViewSet, basename="smart-booking")
router.register("me/appointments", views.MyAppointmentsView, basename="my-appointments")

urlpatterns = [
    path("availability/", availability.AvailabilityView.as_view(), name="availability"),
    path("calendar-feeds/", views.CalendarFeedView.as_view(), name="calendar-feeds"),
    *router.urls,
]
