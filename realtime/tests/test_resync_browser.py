"""After a dropped websocket the pages catch up by themselves (issue 15 a): the smart-booking
job page and the schedule board reconnect with backoff, and what happened while they were away
is shown once they are back. Chromium against the live servers and a real worker; the drop is
made by Playwright standing between the page and daphne."""

import re

from django.conf import settings
from playwright.sync_api import expect

from tests.live import open_page

from .sockets import access_token, api, practice, session_cookie

DROPPED = 1011  # what daphne sends when a consumer fails (idle sockets got it, issue 15)


class Relay:
    """Routes the page's websockets matching `pattern`: each is passed on to daphne while
    `passing`, or closed at once with 1011 (a server that is down) otherwise."""

    def __init__(self, page, pattern: str):
        self.passing = True
        self.opened: list = []  # (page side, server side or None), in order
        page.route_web_socket(re.compile(pattern), self._route)

    def _route(self, socket) -> None:
        if self.passing:
            self.opened.append((socket, socket.connect_to_server()))
        else:
            self.opened.append((socket, None))
            socket.close(code=DROPPED, reason="server error")

    def drop(self) -> None:
        """The server side of the newest socket goes away with 1011; later ones are refused
        until `passing` is set again."""
        self.passing = False
        page_side, server_side = self.opened[-1]
        server_side.on_close(lambda code, reason: None)  # the page hears our 1011, not daphne's
        page_side.close(code=DROPPED, reason="server error")
        server_side.close()


def signed_in_page(browser, live_servers, clinic, user):
    page = open_page(browser)
    cookie = session_cookie(clinic, user)
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_servers.url(clinic)}]
    )
    return page


def test_the_job_page_reconnects_and_shows_what_happened_while_away(
    live_servers, live_worker, committed_acme, make_user, browser
):
    acme = committed_acme
    user = make_user(acme, "patient")
    world = practice(acme, patient_user=user)
    token = access_token(acme, user)
    status, accepted = api(
        live_servers, "acme", "POST", "/api/v1/smart-bookings/",
        token=token, body=world.smart_request(),
    )  # fmt: skip
    assert status == 202, accepted
    job_url = f"/api/v1/smart-bookings/{accepted['job_id']}/"
    page = signed_in_page(browser, live_servers, acme, user)
    # The page's polling is answered 503 throughout: only the socket can tell it anything.
    page.route(re.compile(re.escape(job_url)), lambda route: route.fulfill(status=503))
    relay = Relay(page, r"/ws/jobs/")
    page.goto(live_servers.url("acme", f"/smart/{accepted['job_id']}/"))
    box = page.locator("[data-smart-job]")
    expect(box).to_have_attribute("data-channel", "websocket")
    assert box.get_attribute("data-status") == "queued"

    relay.drop()
    expect(box).to_have_attribute("data-channel", "polling")
    live_worker()  # the job runs to `completed` while the page has no socket
    while api(live_servers, "acme", "GET", job_url, token=token)[1]["status"] != "completed":
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)
    assert box.get_attribute("data-status") == "queued"  # nobody has told the page yet
    tries_while_down = len(relay.opened) - 1
    assert tries_while_down >= 1  # it kept trying

    relay.passing = True  # the server is back
    expect(box).to_have_attribute("data-status", "completed", timeout=45_000)
    expect(box).to_have_attribute("data-channel", "websocket")
    expect(page.get_by_role("heading", name="Booked!")).to_be_visible()


def test_the_board_reconnects_and_shows_what_was_booked_while_away(
    live_servers, committed_acme, make_user, browser
):
    acme = committed_acme
    world = practice(acme)
    desk = make_user(acme, "front_desk")
    page = signed_in_page(browser, live_servers, acme, desk)
    relay = Relay(page, r"/ws/schedule/")
    page.goto(live_servers.url("acme", f"/admin/scheduling/board/?date={world.day}"))
    live = page.locator("#sb-live")
    expect(live).to_have_attribute("data-state", "live")

    relay.drop()
    expect(live).to_have_attribute("data-state", "down")
    status, booked = api(
        live_servers, "acme", "POST", "/api/v1/appointments/",
        token=access_token(acme, desk), body=world.booking(hour=10),
    )  # fmt: skip
    assert status == 201, booked
    visit = page.locator(f'[data-appointment="{booked["id"]}"]')
    page.wait_for_timeout(1000)
    expect(visit).to_have_count(0)  # the board does not poll: nobody has told it yet
    assert len(relay.opened) >= 2  # it kept trying

    relay.passing = True  # the server is back
    expect(live).to_have_attribute("data-state", "live", timeout=45_000)
    expect(visit.first).to_be_visible()  # refetched on the way back in
