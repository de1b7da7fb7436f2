from django.urls import path

from .consumers import WaitlistConsumer

websocket_urlpatterns = [
    path("ws/waitlist/", WaitlistConsumer.as_asgi()),
]
