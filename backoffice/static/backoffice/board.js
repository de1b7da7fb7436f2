/* The schedule board: booking and status actions through the board's endpoints (the same
   services as the API), and live re-rendering of the grid from /ws/schedule/ events. */
(function () {
  "use strict";

  const root = document.getElementById("schedule-board");
  if (!root) return;
  const board = document.getElementById("sb-board");
  const live = document.getElementById("sb-live");
  const toast = document.getElementById("sb-toast");
  const bookDialog = document.getElementById("sb-book");
  const bookForm = document.getElementById("sb-book-form");
  const apptDialog = document.getElementById("sb-appt");
  const tz = root.dataset.tz;
  let data = readData();
  const pendingFlash = new Set();

  function readData() {
    const el = document.getElementById("sb-data");
    return el ? JSON.parse(el.textContent) : { appointments: {}, practitioners: {}, can: {} };
  }

  function csrfToken() {
    return bookForm.querySelector("[name=csrfmiddlewaretoken]").value;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null) node.setAttribute(key, value);
    });
    children.flat().forEach((child) => {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    });
    return node;
  }

  const dayFormat = new Intl.DateTimeFormat(undefined, {
    timeZone: tz, weekday: "short", day: "numeric", month: "short",
  });
  const timeFormat = new Intl.DateTimeFormat(undefined, {
    timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  function when(iso) {
    const moment = new Date(iso);
    return `${dayFormat.format(moment)} ${timeFormat.format(moment)}`;
  }

  function showToast(message) {
    toast.textContent = message;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(() => { toast.hidden = true; }, 3500);
  }

  // --- Live: refetch the grid (the server renders it) when the schedule changes ------------

  let inFlight = null;
  let queued = false;
  let debounce = null;
  let refreshes = 0;

  function refresh() {
    if (inFlight) { queued = true; return inFlight; }
    const url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    inFlight = fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((response) => {
        if (!response.ok || response.redirected) throw new Error(String(response.status));
        return response.text();
      })
      .then((html) => {
        board.innerHTML = html;
        data = readData();
        refreshes += 1;
        root.dataset.refreshes = String(refreshes);
        pendingFlash.forEach((id) => {
          board.querySelectorAll(`[data-appointment="${id}"]`).forEach((node) => {
            node.classList.add("sb-flash");
          });
        });
        pendingFlash.clear();
      })
      .catch(() => setLive("down", "Reload the page"))
      .finally(() => {
        inFlight = null;
        if (queued) { queued = false; refresh(); }
      });
    return inFlight;
  }

  function refreshSoon(flashId) {
    if (flashId) pendingFlash.add(String(flashId));
    clearTimeout(debounce);
    debounce = setTimeout(refresh, 120);
  }

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  // The socket is opened again whenever it drops (a server restart, a network change), after
  // 1, 2, 4 ... 30 s, each between half and all of it so a restarted server is not met by every
  // board at once. Back in (`ready`), the board refetches its grid: whatever changed while it
  // was away is shown, since the socket only carries changes made while it is open.
  let socket = null;
  let retry = 0;
  let reconnectTimer = null;
  function connect() {
    reconnectTimer = null;
    if (!root.dataset.ws || !("WebSocket" in window)) { setLive("down", "Not live"); return; }
    socket = new WebSocket(root.dataset.ws);
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      if (message.type === "ready") {
        const wasDown = retry > 0;
        retry = 0;
        setLive("live", "Live");
        if (wasDown) refreshSoon(); // events may have been missed while away
      } else if (message.type && message.type.startsWith("appointment.")) {
        refreshSoon(message.appointment && message.appointment.id);
      } else if (message.type && message.type.startsWith("waitlist.")) {
        refreshSoon(); // a slot held for a waitlist patient, or released
      } else if (message.type === "resync") {
        refreshSoon(); // events were lost to a Redis fault while this socket stayed open
      }
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4403) {
        setLive("down", "Not live (sign in again)");
        return;
      }
      retry += 1;
      setLive("down", "Reconnecting…");
      const delay = Math.min(30000, 500 * 2 ** Math.min(retry, 6)) * (0.5 + Math.random() / 2);
      reconnectTimer = setTimeout(connect, delay);
    });
  }
  // Back online: try at once instead of waiting out the delay.
  window.addEventListener("online", () => {
    if (!reconnectTimer) return;
    clearTimeout(reconnectTimer);
    connect();
  });

  // --- Filters submit themselves ------------------------------------------------------------

  const filters = document.getElementById("sb-filters");
  filters.addEventListener("change", () => filters.submit());

  // --- Problems (the API's problem JSON) ----------------------------------------------------

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
    } catch (error) {
      return { ok: false, status: 0, body: { detail: "The server could not be reached." } };
    }
    const type = response.headers.get("Content-Type") || "";
    if (response.redirected || !type.includes("json")) {
      return { ok: false, status: response.status, body: { detail: "Your session has ended: reload the page and sign in." } };
    }
    return { ok: response.ok, status: response.status, body: await response.json() };
  }

  function showProblem(box, body, extra) {
    box.replaceChildren();
    box.append(el("h3", null, body.title || "Not possible"));
    box.append(el("p", null, body.detail || "The request was refused."));
    if (body.errors) {
      const list = el("ul");
      Object.entries(body.errors).forEach(([name, messages]) => {
        list.append(el("li", null, `${name.replace("_", " ")}: ${[].concat(messages).join(" ")}`));
      });
      box.append(list);
    }
    if (body.conflicting_appointments && body.conflicting_appointments.length) {
      box.append(el("p", null, "Taken by: " + body.conflicting_appointments
        .map((c) => `#${c.id} ${timeFormat.format(new Date(c.start))}–${timeFormat.format(new Date(c.end))}`)
        .join(", ")));
    }
    if (extra) box.append(extra);
    box.hidden = false;
  }

  // --- Booking a free slot ------------------------------------------------------------------

  const patientQuery = document.getElementById("sb-patient-q");
  const patientResults = document.getElementById("sb-patient-results");
  const patientChosen = document.getElementById("sb-patient-chosen");
  const typeSelect = document.getElementById("sb-type");
  const telehealthRow = document.getElementById("sb-telehealth-row");
  const bookProblem = document.getElementById("sb-book-problem");
  const bookSubmit = document.getElementById("sb-book-submit");
  let search = null;

  function field(name) { return bookForm.elements.namedItem(name); }

  function setSlot(practitionerId, start, location) {
    const practitioner = data.practitioners[practitionerId];
    const previousType = typeSelect.value;
    field("practitioner").value = practitionerId;
    field("start").value = start;
    field("walk_in").value = "";  // a slot chosen on the grid or from alternatives
    field("location").value = location || "";
    document.getElementById("sb-book-when").textContent = `${practitioner ? practitioner.name : ""} · ${when(start)}`;
    typeSelect.replaceChildren(...(practitioner ? practitioner.types : []).map((t) =>
      el("option", { value: t.id, "data-mode": t.mode }, `${t.name} · ${t.minutes} min`)));
    if (previousType && typeSelect.querySelector(`option[value="${previousType}"]`)) typeSelect.value = previousType;
    if (!typeSelect.options.length) typeSelect.append(el("option", { value: "" }, "This practitioner offers no visit types"));
    updateMode();
  }

  function updateMode() {
    const practitioner = data.practitioners[field("practitioner").value];
    const option = typeSelect.selectedOptions[0];
    const mode = option ? option.dataset.mode : "";
    telehealthRow.hidden = !(practitioner && practitioner.telehealth && mode === "either");
    if (telehealthRow.hidden) field("telehealth").checked = false;
  }
  typeSelect.addEventListener("change", updateMode);

  function choosePatient(id, label) {
    field("patient").value = id || "";
    patientChosen.hidden = !id;
    patientChosen.querySelector("span").textContent = label || "";
    patientQuery.hidden = Boolean(id);
    patientResults.replaceChildren();
    if (!id) { patientQuery.value = ""; patientQuery.focus(); }
  }
  document.getElementById("sb-patient-change").addEventListener("click", () => choosePatient(null));

  patientQuery.addEventListener("input", () => {
    clearTimeout(search);
    const q = patientQuery.value.trim();
    if (q.length < 2) { patientResults.replaceChildren(); return; }
    search = setTimeout(async () => {
      const url = new URL(root.dataset.patientsUrl, window.location.href);
      url.searchParams.set("q", q);
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const { results } = await response.json();
      patientResults.replaceChildren(...(results.length ? results.map((p) => el("li", null,
        el("button", { type: "button", role: "option", onclick: () => choosePatient(p.id, p.name) },
          el("span", null, p.name), el("small", null, `born ${p.dob}`))))
        : [el("li", null, el("small", { class: "sb-sub" }, "No patient matches."))]));
    }, 180);
  });

  function openBook(slot) {
    document.getElementById("sb-book-title").textContent = "Book a visit";
    bookForm.reset();
    bookProblem.hidden = true;
    field("overbook").value = "";
    choosePatient(null);
    setSlot(slot.practitioner, slot.start, slot.location);
    bookDialog.showModal();
    patientQuery.focus();
  }

  async function submitBook(options) {
    bookProblem.hidden = true;
    if (!field("patient").value) {
      showProblem(bookProblem, { title: "Choose a patient", detail: "Search for the patient to book." });
      patientQuery.focus();
      return;
    }
    field("overbook").value = options && options.overbook ? "true" : "";
    const mode = (typeSelect.selectedOptions[0] || {}).dataset || {};
    const body = new FormData(bookForm);
    if (mode.mode === "telehealth") body.delete("location");
    if (!body.get("telehealth")) body.delete("telehealth");
    if (!body.get("overbook")) body.delete("overbook");
    if (!body.get("walk_in")) body.delete("walk_in");
    bookSubmit.disabled = true;
    const result = await post(root.dataset.bookUrl, body);
    bookSubmit.disabled = false;
    if (result.ok) {
      const appointment = result.body.appointment;
      bookDialog.close();
      showToast(`Booked ${appointment.patient.name} · ${when(appointment.start)}`);
      refreshSoon(appointment.id);
      return;
    }
    showProblem(bookProblem, result.body, alternatives(result.body));
  }

  function alternatives(body) {
    const wrap = el("div");
    const options = body.suggested_alternatives || [];
    if (options.length) {
      wrap.append(el("p", null, el("strong", null, "Free instead:")));
      wrap.append(el("ul", null, options.map((option) => el("li", null,
        el("button", {
          type: "button", class: "sb-alt",
          onclick: () => {
            if (!data.practitioners[option.practitioner]) {
              // Another practitioner not on this board (filtered out): keep the form's type.
              data.practitioners[option.practitioner] = {
                name: option.practitioner_name, telehealth: false,
                types: Array.from(typeSelect.options).map((o) => ({ id: o.value, name: o.text, minutes: "", mode: o.dataset.mode })),
              };
            }
            setSlot(String(option.practitioner), option.start, option.location);
            submitBook();
          },
        }, el("span", null, option.practitioner_name), el("strong", null, when(option.start)))))));
    }
    if (body.code === "slot-unavailable" && data.can && data.can.overbook) {
      wrap.append(el("p", null, el("button", {
        type: "button", class: "sb-btn sb-danger", onclick: () => submitBook({ overbook: true }),
      }, "Book anyway (overbook)")));
    }
    return wrap.childNodes.length ? wrap : null;
  }

  bookForm.addEventListener("submit", (event) => { event.preventDefault(); submitBook(); });

  // --- Acting on an appointment -------------------------------------------------------------

  const apptProblem = document.getElementById("sb-appt-problem");
  const cancelRow = document.getElementById("sb-cancel-row");
  const cancelReason = document.getElementById("sb-cancel-reason");

  function openAppointment(id) {
    const a = data.appointments[id];
    if (!a) return;
    apptProblem.hidden = true;
    cancelRow.hidden = true;
    cancelReason.value = "";
    document.getElementById("sb-appt-title").textContent = a.patient;
    document.getElementById("sb-appt-when").textContent = `${a.date} · ${a.time}`;
    const pill = document.getElementById("sb-appt-status");
    pill.className = `sb-pill sb-status-${a.status}`;
    pill.textContent = a.status_label + (a.late_cancel ? " (late)" : "");
    const rows = [
      ["Practitioner", a.practitioner], ["Visit", a.type],
      ["Where", a.telehealth ? "Telehealth" : a.location], ["Booked via", a.source],
      ["Units", a.units], ["Authorization", a.warning], ["Overbooked", a.overbooked ? "Yes" : ""],
      ["Cancelled because", a.cancellation_reason], ["Notes", a.notes],
    ].filter(([, value]) => value);
    document.getElementById("sb-appt-details").replaceChildren(
      ...rows.flatMap(([label, value]) => [el("dt", null, label), el("dd", null, value)]));
    document.getElementById("sb-appt-admin").href = a.admin_url;
    const actions = document.getElementById("sb-appt-actions");
    moveForm.hidden = true;
    moving = null;
    actions.replaceChildren(...(a.movable ? [el("button", {
      type: "button", class: "sb-btn", "data-action": "move", onclick: () => openMove(a),
    }, "Move")] : []), ...a.actions.map((action) => el("button", {
      type: "button",
      class: `sb-btn ${action.name === "cancel" ? "sb-danger" : action.name === "no-show" ? "" : "sb-primary"}`,
      "data-action": action.name,
      onclick: (event) => act(a, action.name, event.currentTarget),
    }, action.label)));
    if (!apptDialog.open) apptDialog.showModal();
  }

  async function act(a, action, button) {
    if (action === "cancel" && cancelRow.hidden) {
      cancelRow.hidden = false;
      button.textContent = "Confirm cancel";
      cancelReason.focus();
      return;
    }
    const body = new FormData();
    if (action === "cancel") body.append("reason", cancelReason.value);
    button.disabled = true;
    const url = root.dataset.actionUrl.replace("/0/ACTION/", `/${a.id}/${action}/`);
    const result = await post(url, body);
    button.disabled = false;
    if (result.ok) {
      apptDialog.close();
      showToast(`${a.patient}: ${result.body.appointment.status.replace("_", " ")}`);
      refreshSoon(a.id);
    } else {
      showProblem(apptProblem, result.body);
    }
  }

  // --- Moving a visit: the Move dialog, and drag and drop on the day view -----------------
  // Both post to the board's move endpoint (the API's reschedule service): a taken slot
  // answers 409 with alternatives, each a button that moves the visit there instead.

  const moveForm = document.getElementById("sb-move");
  const movePractitioner = document.getElementById("sb-move-practitioner");
  const moveDate = document.getElementById("sb-move-date");
  const moveTime = document.getElementById("sb-move-time");
  let moving = null;

  function practitionersFor(typeId) {
    return Object.entries(data.practitioners)
      .filter(([, p]) => p.types.some((t) => String(t.id) === String(typeId)));
  }

  function openMove(a) {
    moving = a;
    cancelRow.hidden = true;
    apptProblem.hidden = true;
    movePractitioner.replaceChildren(...practitionersFor(a.type_id).map(([id, p]) =>
      el("option", { value: id }, p.name)));
    movePractitioner.value = String(a.practitioner_id);
    moveDate.value = a.local_date;
    moveTime.value = a.local_time;
    const grid = board.querySelector(".sb-day");
    if (grid) moveTime.step = String(Number(grid.dataset.step) * 60);
    moveForm.hidden = false;
    moveTime.focus();
  }

  async function move(a, practitionerId, start, options) {
    const body = new FormData();
    body.append("start", start);
    if (practitionerId && String(practitionerId) !== String(a.practitioner_id)) {
      body.append("practitioner", practitionerId);
    }
    if (options && options.overbook) body.append("overbook", "true");
    const url = root.dataset.moveUrl.replace("/0/", `/${a.id}/`);
    const result = await post(url, body);
    if (result.ok) {
      const moved = result.body.appointment;
      if (apptDialog.open) apptDialog.close();
      showToast(`Moved ${a.patient} to ${moved.practitioner.display_name} · ${when(moved.start)}`);
      refreshSoon(a.id);
      return true;
    }
    if (!apptDialog.open) openAppointment(a.id);
    openMove(a);
    showProblem(apptProblem, result.body, moveAlternatives(a, result.body));
    return false;
  }

  function moveAlternatives(a, body) {
    const wrap = el("div");
    const options = body.suggested_alternatives || [];
    if (options.length) {
      wrap.append(el("p", null, el("strong", null, "Free instead:")));
      wrap.append(el("ul", null, options.map((option) => el("li", null,
        el("button", {
          type: "button", class: "sb-alt",
          onclick: () => move(a, option.practitioner, option.start),
        }, el("span", null, option.practitioner_name), el("strong", null, when(option.start)))))));
    }
    if (body.code === "slot-unavailable" && data.can && data.can.overbook) {
      wrap.append(el("p", null, el("button", {
        type: "button", class: "sb-btn sb-danger",
        onclick: () => move(a, movePractitioner.value, `${moveDate.value}T${moveTime.value}`, { overbook: true }),
      }, "Move anyway (overbook)")));
    }
    return wrap.childNodes.length ? wrap : null;
  }

  moveForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!moving || !moveDate.value || !moveTime.value) return;
    const submit = document.getElementById("sb-move-submit");
    submit.disabled = true;
    move(moving, movePractitioner.value, `${moveDate.value}T${moveTime.value}`)
      .finally(() => { submit.disabled = false; });
  });

  // Drag a visit within the day grid: where it is dropped (snapped to the clinic's step, on
  // the wall clock the grid is drawn in) and in whose column is where it moves.
  let drag = null;
  board.addEventListener("dragstart", (event) => {
    const node = event.target.closest && event.target.closest(".sb-appt[draggable=true]");
    if (!node) return;
    const a = data.appointments[node.dataset.appointment];
    if (!a) return;
    drag = { a, grab: event.clientY - node.getBoundingClientRect().top };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", String(a.id));
    node.classList.add("sb-dragging");
  });
  board.addEventListener("dragend", (event) => {
    const node = event.target.closest && event.target.closest(".sb-appt");
    if (node) node.classList.remove("sb-dragging");
    board.querySelectorAll(".sb-drop").forEach((col) => col.classList.remove("sb-drop"));
  });
  board.addEventListener("dragover", (event) => {
    const col = drag && event.target.closest(".sb-col");
    if (!col) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    board.querySelectorAll(".sb-drop").forEach((other) => { if (other !== col) other.classList.remove("sb-drop"); });
    col.classList.add("sb-drop");
  });
  board.addEventListener("drop", (event) => {
    const col = drag && event.target.closest(".sb-col");
    if (!col) return;
    event.preventDefault();
    col.classList.remove("sb-drop");
    const grid = col.closest(".sb-day");
    const ppm = parseFloat(getComputedStyle(grid).getPropertyValue("--ppm")) || 1.25;
    const step = Number(grid.dataset.step) || 15;
    const y = event.clientY - col.getBoundingClientRect().top - drag.grab;
    let minutes = Number(grid.dataset.first) + Math.round(y / ppm / step) * step;
    minutes = Math.max(0, Math.min(24 * 60 - step, minutes));
    const clock = `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
    const { a } = drag;
    drag = null;
    const target = col.dataset.practitioner;
    if (String(target) === String(a.practitioner_id) && clock === a.local_time) return;
    move(a, target, `${grid.dataset.day}T${clock}`);
  });

  // --- Wiring -------------------------------------------------------------------------------

  board.addEventListener("click", (event) => {
    const walkIn = event.target.closest(".sb-walkin");
    if (walkIn) {
      openBook({ practitioner: walkIn.dataset.practitioner, start: walkIn.dataset.start, location: "" });
      field("walk_in").value = "true";  // the server starts it at the next step from booking
      document.getElementById("sb-book-title").textContent = "Walk-in visit";
      return;
    }
    const free = event.target.closest(".sb-free");
    if (free) { openBook(free.dataset); return; }
    const appointment = event.target.closest("[data-appointment]");
    if (appointment) openAppointment(appointment.dataset.appointment);
  });
  document.querySelectorAll(".sb-dialog [data-close]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close());
  });
  document.querySelectorAll(".sb-dialog").forEach((dialog) => {
    dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  });

  // The admin's Move (`?move=<id>`): open that visit's Move dialog at once.
  const askedToMove = new URL(window.location.href).searchParams.get("move");
  if (askedToMove && data.appointments[askedToMove] && data.appointments[askedToMove].movable) {
    openAppointment(askedToMove);
    openMove(data.appointments[askedToMove]);
  }

  connect();
})();
