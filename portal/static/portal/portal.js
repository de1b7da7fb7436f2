/* Clinic patient pages: small progressive enhancements. Every page works without this file;
   with it: the browser's time zone is detected, selects submit on change, the smart-booking
   status page follows its job live and the waitlist page its offers (websockets, reconnected
   when they drop; polling while the socket is away). */
(function () {
  "use strict";

  var ZONE_COOKIE = "portal_tz";

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
    } catch (e) {
      return null;
    }
  }

  /* The browser's zone goes into a cookie the server reads. A page that shows times and was
     rendered in a fallback zone reloads once (never in a loop) to show the right times. */
  function detectZone() {
    var zone = browserZone();
    if (!zone) return;
    document.querySelectorAll("input[data-detect-zone]").forEach(function (input) {
      input.value = zone;
    });
    if (readCookie(ZONE_COOKIE) === zone) return;
    document.cookie = ZONE_COOKIE + "=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    var body = document.body;
    var marker = "portal_tz_reloaded";
    if (
      body.hasAttribute("data-zone-reload") &&
      body.getAttribute("data-zone-source") !== "chosen" &&
      body.getAttribute("data-viewer-zone") !== zone &&
      sessionStorage.getItem(marker) !== zone
    ) {
      sessionStorage.setItem(marker, zone);
      window.location.reload();
    }
  }

  /* Selects marked data-autosubmit submit their form when picked with a pointer. From the
     keyboard, arrow keys change a closed select at once: those users press the form's button
     (always there), so moving through the options never reloads the page under them. */
  function autosubmit() {
    document.querySelectorAll("[data-autosubmit]").forEach(function (select) {
      var pointer = false;
      select.addEventListener("pointerdown", function () { pointer = true; });
      select.addEventListener("keydown", function () { pointer = false; });
      select.addEventListener("change", function () {
        if (!pointer) return;
        if (select.form.requestSubmit) select.form.requestSubmit();
        else select.form.submit();
      });
    });
  }

  /* On phones the filter panel starts folded (and folds when the window narrows). */
  function foldOnPhone() {
    var phone = window.matchMedia("(max-width: 699px)");
    function fold() {
      if (!phone.matches) return;
      document.querySelectorAll("details[data-collapse-on-phone]").forEach(function (details) {
        details.removeAttribute("open");
      });
    }
    fold();
    if (phone.addEventListener) phone.addEventListener("change", fold);
  }

  /* A socket that is opened again when it drops (a server restart, a network change): after
     1, 2, 4 ... 30 s, each delay between half and all of it so a restarted server is not met by
     every page at the same instant, and at once when the browser is back online; never after
     a close code in `refused` (signed out, not theirs, gone: reconnecting cannot help).
     `onFrame(frame)` gets each JSON frame, `onLive()` comes with the first frame of each
     connection (the socket works, again), `onLost()` when a socket closes, cannot be opened, or
     says nothing for 4 s (a proxy swallowing it): the page then keeps itself current another
     way until `onLive`. Returns `{stop}`, or null where the browser has no WebSocket. */
  function liveSocket(url, refused, handlers) {
    if (!("WebSocket" in window)) return null;
    var attempts = 0;
    var reconnectTimer = null;
    var stopped = false;
    var socket = null;

    function connect() {
      reconnectTimer = null;
      if (stopped) return;
      var heard = false;
      try {
        socket = new WebSocket(url);
      } catch (e) {
        handlers.onLost();
        return;
      }
      socket.addEventListener("message", function (event) {
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return; // not one of ours
        }
        if (!heard) {
          heard = true;
          attempts = 0;
          handlers.onLive();
        }
        handlers.onFrame(frame);
      });
      socket.addEventListener("close", function (event) {
        if (stopped) return;
        handlers.onLost();
        if (refused.indexOf(event.code) >= 0) return;
        var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
        attempts += 1;
        reconnectTimer = window.setTimeout(connect, delay);
      });
      window.setTimeout(function () {
        if (!heard && !stopped) handlers.onLost();
      }, 4000);
    }

    window.addEventListener("online", function () {
      if (!reconnectTimer) return;
      window.clearTimeout(reconnectTimer);
      connect();
    });
    connect();
    return {
      stop: function () {
        stopped = true;
        window.clearTimeout(reconnectTimer);
        if (socket) socket.close();
      },
    };
  }

  /* Fetch a server-rendered fragment (translated, in the viewer's zone) into `box`, the latest
     request winning; `then(ok)` after it landed or failed. */
  function fragmentLoader(box) {
    var sequence = 0;
    return function (then) {
      var mine = ++sequence;
      fetch(box.getAttribute("data-fragment-url"), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.text();
        })
        .then(function (html) {
          if (mine !== sequence) return; // a newer one is on its way
          box.innerHTML = html;
          if (then) then(true);
        })
        .catch(function () {
          if (mine === sequence && then) then(false);
        });
    };
  }

  /* A timer that calls `tick` every `ms` while on, first at once when `now` (the page's way to
     stay current while its socket is away); `box` says which channel it is on. */
  function poller(box, ms, tick, now) {
    var timer = null;
    return {
      start: function () {
        if (timer) return;
        box.setAttribute("data-channel", "polling");
        if (now) tick();
        timer = window.setInterval(tick, ms);
      },
      stop: function () {
        if (timer) window.clearInterval(timer);
        timer = null;
      },
    };
  }

  /* The smart-booking status page. Each status change fetches the page's fragment; the job's
     socket sends the job's current state first on every connect, so whatever happened while it
     was away is shown at once. Meanwhile (and when the socket is refused or says nothing) the
     page polls the status URL. */
  function followJob(box) {
    var FINAL = ["completed", "failed", "cancelled"];
    var status = box.getAttribute("data-status");
    if (FINAL.indexOf(status) >= 0) return;
    var seen = status;
    var finished = false;
    var load = fragmentLoader(box);
    var polling = poller(box, 1500, poll, true);
    var live = null;

    function show(newStatus) {
      if (!newStatus || newStatus === seen) return;
      seen = newStatus;
      if (FINAL.indexOf(newStatus) >= 0) {
        finished = true;
        polling.stop();
        if (live) live.stop();
      }
      load(function (ok) {
        if (ok) {
          box.setAttribute("data-status", newStatus);
          var note = document.querySelector("[data-live-note]");
          if (note && finished) note.hidden = true;
        } else {
          seen = null; // try again on the next message or poll
          if (!finished) polling.start();
        }
      });
    }

    function poll() {
      fetch(box.getAttribute("data-status-url"), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) { if (job) show(job.status); })
        .catch(function () {});
    }

    live = liveSocket(box.getAttribute("data-ws-url"), [4401, 4403, 4404], {
      onLive: function () {
        polling.stop();
        box.setAttribute("data-channel", "websocket");
      },
      onFrame: function (job) { show(job.status); },
      onLost: function () { if (!finished) polling.start(); },
    });
    if (!live) polling.start();
  }

  /* The waitlist page's offers and entries. The patient's socket says when one of their
     offers is held, taken or released; the page then fetches that part of itself again. Each
     (re)connect starts with `ready`, which fetches too, so nothing that happened while the
     socket was away is missed; meanwhile the page fetches every 15 s. */
  function followWaitlist(box) {
    var load = fragmentLoader(box);
    var polling = poller(box, 15000, function () { load(); }, false);
    var live = liveSocket(box.getAttribute("data-ws-url"), [4401, 4403], {
      onLive: function () {
        polling.stop();
        box.setAttribute("data-channel", "websocket");
      },
      onFrame: function () { load(); },
      onLost: polling.start,
    });
    if (!live) polling.start();
  }

  function start() {
    detectZone();
    autosubmit();
    foldOnPhone();
    document.querySelectorAll("[data-smart-job]").forEach(followJob);
    document.querySelectorAll("[data-waitlist-live]").forEach(followWaitlist);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
