from django.urls import path

from . import consumers
from .smart.consumer import JobStatusConsumer

websocket_urlpatterns = [
    path("ws/jobs/<uuid:job_id>/", JobStatusConsumer.as_asgi()),
    path("ws/schedule/", consumers.ScheduleConsumer.as_asgi()),
]
