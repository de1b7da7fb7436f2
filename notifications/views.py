"""The page a signed link opens (routed in clinic.urls_tenants): GET shows what the link will
do (mail scanners follow links, so nothing happens on GET), POST does it once. A used, expired,
changed or foreign link explains itself on the same page."""

from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .links import LinkProblem, action_link_check, action_link_use
from .models import ActionLink


@require_http_methods(["GET", "POST"])
def link_page(request, token: str):
    now = timezone.now()
    try:
        if request.method == "POST":
            checked = action_link_use(token=token, now=now)
            if checked.link.action == ActionLink.Action.RESCHEDULE:
                return redirect(reverse("portal:reschedule", kwargs={"pk": checked.appointment.pk}))
            done = True
        else:
            checked = action_link_check(token=token, now=now)
            done = False
    except LinkProblem as problem:
        return render(
            request,
            "notifications/link.html",
            {"problem": problem},
            status=410 if problem.code in ("used", "expired", "moved", "closed") else 400,
        )
    return render(
        request,
        "notifications/link.html",
        {"link": checked.link, "appointment": checked.appointment, "done": done},
    )
