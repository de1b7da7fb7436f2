/* Clinic patient pages: small progressive enhancements. Every page works without this file;
   with it: the browser's time zone is detected, selects submit on change, and the smart-booking
   status page follows its job live (websocket, or polling when the socket fails). */
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
     (translated, in the viewer's zone) and swaps it in; the latest request wins. */
  function followJob(box) {
    var FINAL = ["completed", "failed", "cancelled"];
    var status = box.getAttribute("data-status");
    if (FINAL.indexOf(status) >= 0) return;
    var seen = status;
    var sequence = 0;
    var finished = false;
    var pollTimer = null;
    var socket = null;

    function show(newStatus) {
      if (!newStatus || newStatus === seen) return;
      seen = newStatus;
      var mine = ++sequence;
      if (FINAL.indexOf(newStatus) >= 0) {
        finished = true;
        stopPolling();
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

    if (!("WebSocket" in window)) {
      startPolling();
      return;
    }
    try {
      socket = new WebSocket(box.getAttribute("data-ws-url"));
    } catch (e) {
      startPolling();
      return;
    }
    socket.addEventListener("open", function () {
      if (!pollTimer) box.setAttribute("data-channel", "websocket");
    });
    socket.addEventListener("message", function (event) {
      try {
        show(JSON.parse(event.data).status);
      } catch (e) { /* not a job frame */ }
    });
    socket.addEventListener("error", startPolling);
    socket.addEventListener("close", function () {
      if (!finished) startPolling();
    });
    // A socket that says nothing (a proxy swallowing it) must not leave the page waiting.
    window.setTimeout(function () {
      if (!finished && socket.readyState !== WebSocket.OPEN) startPolling();
    }, 4000);
  }

  function start() {
    detectZone();
    autosubmit();
    foldOnPhone();
    document.querySelectorAll("[data-smart-job]").forEach(followJob);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
