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

  /* The smart-booking status page. Each status change fetches the server-rendered fragment
     (translated, in the viewer's zone) and swaps it in; the latest request wins. A socket that
     drops (a server restart, a network change) is opened again with growing, jittered delays;
     the job's socket sends the job's current state first on every connect, so whatever
     happened while it was away is shown at once. Meanwhile (and when the socket is refused or
     says nothing) the page polls the status URL. */
  function followJob(box) {
    var FINAL = ["completed", "failed", "cancelled"];
    var REFUSED = [4401, 4403, 4404]; // signed out, not theirs, gone: reconnecting cannot help
    var status = box.getAttribute("data-status");
    if (FINAL.indexOf(status) >= 0) return;
    var seen = status;
    var sequence = 0;
    var finished = false;
    var pollTimer = null;
    var reconnectTimer = null;
    var attempts = 0;

    function show(newStatus) {
      if (!newStatus || newStatus === seen) return;
      seen = newStatus;
      var mine = ++sequence;
      if (FINAL.indexOf(newStatus) >= 0) {
        finished = true;
        stopPolling();
        window.clearTimeout(reconnectTimer);
      }
      fetch(box.getAttribute("data-fragment-url"), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.text();
        })
        .then(function (html) {
          if (mine !== sequence) return; // a newer state is on its way
          box.innerHTML = html;
          box.setAttribute("data-status", newStatus);
          var note = document.querySelector("[data-live-note]");
          if (note && finished) note.hidden = true;
        })
        .catch(function () {
          if (mine === sequence) seen = null; // try again on the next message or poll
          startPolling();
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

    function startPolling() {
      if (pollTimer || finished) return;
      box.setAttribute("data-channel", "polling");
      poll();
      pollTimer = window.setInterval(poll, 1500);
    }

    function stopPolling() {
      if (pollTimer) window.clearInterval(pollTimer);
      pollTimer = null;
    }

    function reconnectLater() {
      // 1, 2, 4 ... 30 s, each between half and all of it, so a restarted server is not met
      // by every page at the same instant.
      var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
      attempts += 1;
      reconnectTimer = window.setTimeout(connect, delay);
    }

    function connect() {
      reconnectTimer = null;
      if (finished) return;
      var socket;
      var heard = false;
      try {
        socket = new WebSocket(box.getAttribute("data-ws-url"));
      } catch (e) {
        startPolling();
        return;
      }
      socket.addEventListener("message", function (event) {
        var job;
        try {
          job = JSON.parse(event.data);
        } catch (e) {
          return; // not a job frame
        }
        if (!heard) { // the job's current state: the socket is live (again)
          heard = true;
          attempts = 0;
          stopPolling();
          box.setAttribute("data-channel", "websocket");
        }
        show(job.status);
      });
      socket.addEventListener("close", function (event) {
        if (finished) return;
        startPolling();
        if (REFUSED.indexOf(event.code) < 0) reconnectLater();
      });
      // A socket that says nothing (a proxy swallowing it) must not leave the page waiting.
      window.setTimeout(function () {
        if (!heard && !finished) startPolling();
      }, 4000);
    }

    if (!("WebSocket" in window)) {
      startPolling();
      return;
    }
    // Back online: try at once instead of waiting out the delay.
    window.addEventListener("online", function () {
      if (!reconnectTimer) return;
      window.clearTimeout(reconnectTimer);
      connect();
    });
    connect();
  }

  /* The waitlist page's offers and entries. The patient's socket says when one of their
     offers is held, taken or released; the page then fetches that part of itself again
     (server-rendered, in the viewer's zone; the latest request wins). Each (re)connect starts
     with `ready`, which fetches too, so nothing that happened while the socket was away is
     missed; meanwhile the page fetches every 15 s. */
  function followWaitlist(box) {
    var REFUSED = [4401, 4403];
    var sequence = 0;
    var pollTimer = null;
    var reconnectTimer = null;
    var attempts = 0;

    function refresh() {
      var mine = ++sequence;
      fetch(box.getAttribute("data-fragment-url"), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.text();
        })
        .then(function (html) {
          if (mine === sequence) box.innerHTML = html;
        })
        .catch(function () {});
    }

    function startPolling() {
      if (pollTimer) return;
      box.setAttribute("data-channel", "polling");
      pollTimer = window.setInterval(refresh, 15000);
    }

    function stopPolling() {
      if (pollTimer) window.clearInterval(pollTimer);
      pollTimer = null;
    }

    function connect() {
      reconnectTimer = null;
      var socket;
      try {
        socket = new WebSocket(box.getAttribute("data-ws-url"));
      } catch (e) {
        startPolling();
        return;
      }
      socket.addEventListener("message", function (event) {
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (frame.type === "ready") {
          attempts = 0;
          stopPolling();
          box.setAttribute("data-channel", "websocket");
        }
        refresh();
      });
      socket.addEventListener("close", function (event) {
        startPolling();
        if (REFUSED.indexOf(event.code) >= 0) return;
        var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
        attempts += 1;
        reconnectTimer = window.setTimeout(connect, delay);
      });
    }

    if (!("WebSocket" in window)) {
      startPolling();
      return;
    }
    window.addEventListener("online", function () {
      if (!reconnectTimer) return;
      window.clearTimeout(reconnectTimer);
      connect();
    });
    connect();
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
