"""Staff sessions end after a while idle and after a fixed span, however busy.

A staff member's browser session reaches every patient's record, so a workstation left signed
in is a risk the clinic cannot see: the session ends after `STAFF_SESSION_IDLE_MINUTES` without
a request and `STAFF_SESSION_MAX_HOURS` after it began. Patients keep Django's ordinary
sessions (`SESSION_COOKIE_AGE`). The session holds when it began and when it was last used;
the HTTP middleware and the websockets' cookie authentication both ask `staff_session_expired`.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.utils import timezone

SINCE_KEY = "_staff_session_since"
SEEN_KEY = "_staff_session_seen"
# Writing the last-seen time costs a session save; within this many seconds it is not moved.
SEEN_GRANULARITY_SECONDS = 60


def staff_session_expired(session, user) -> str | None:
    """Why this staff session is over ("idle" or "absolute"), or None when it is current (or
    not a staff session). Marks the session's start and last use."""
    if not (user.is_authenticated and user.is_staff):
        return None
    now = timezone.now().timestamp()
    since = session.get(SINCE_KEY)
    seen = session.get(SEEN_KEY)
    if since is None or seen is None:
        session[SINCE_KEY] = session[SEEN_KEY] = now
        return None
    if now - since > settings.STAFF_SESSION_MAX_HOURS * 3600:
        return "absolute"
    if now - seen > settings.STAFF_SESSION_IDLE_MINUTES * 60:
        return "idle"
    if now - seen >= SEEN_GRANULARITY_SECONDS:
        session[SEEN_KEY] = now
    return None


class StaffSessionTimeoutMiddleware:
    """Signs a staff member out when their session is over: the admin sends them to its login
    page with a message that says why; anything else answers as to a visitor (the API: 401)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reason = staff_session_expired(request.session, request.user)
        if reason is not None:
            logout(request)
            if reason == "idle":
                text = (
                    f"You were signed out after {settings.STAFF_SESSION_IDLE_MINUTES} minutes "
                    "without activity. Sign in again."
                )
            else:
                text = (
                    f"Staff sessions last {settings.STAFF_SESSION_MAX_HOURS} hours at most. "
                    "Sign in again."
                )
            messages.warning(request, text)
            if request.path.startswith("/admin/"):
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self.get_response(request)
