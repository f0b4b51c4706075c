// Scan station: one always-focused field driven by a keyboard-wedge scanner. Every action calls
// the JSON API; the page holds no rules of its own, it shows what the API says.
//
// Three promises to the technician at a busy counter:
// - One card, one scan: every scan, accepted or refused, replaces the card, and a refusal clears
//   every action. Each action names the vial it acts on and sends that vial's id.
// - Focus cannot be lost: after any click, choice or prompt the scan field has the cursor again,
//   and a scanner burst typed into another field is taken as a scan, never as text there.
// - The patient is identified by the technician (wristband, or an explicit choice of session),
//   never chosen for them, and shown (name, MRN, date of birth) before F6 does anything.
(function () {
  "use strict";
  const cfg = window.SCAN_STATION || {};
  const GS = "\u001d";
  const $ = (id) => document.getElementById(id);
  const input = $("scan-input");
  const api = window.IvigApi.call;
  let mode = "single";        // "single" | "receive"
  let current = null;         // the card's scan answer (a carton), or null: nothing to act on
  let check = null;           // the dispense check of the card's vial for the chosen session
  let acknowledged = false;   // the technician acknowledged the card's cautions
  let receiveList = [];       // [{raw, line, problem}]
  let receiptCheck = null;
  let busy = false;

  // --- feedback -------------------------------------------------------------------------------
  let audio = null;
  function beep() {
    // A short low tone on red, so eyes can stay on the vial.
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square"; osc.frequency.value = 330; gain.gain.value = 0.08;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.25);
    } catch (e) { /* no sound available */ }
  }

  function message(text, colour) {
    window.IvigApi.message(text, colour);
    if (colour === "red") beep();
  }

  function historyAdd(text, colour) {
    const li = document.createElement("li");
    li.className = colour || "";
    li.textContent = new Date().toLocaleTimeString() + " · " + text;
    const list = $("history");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 12) list.removeChild(list.lastChild);
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function shown(value) { return value === null || value === undefined || value === "" ? "—" : String(value); }

  function worstSeverity(warnings) {
    if (warnings.some((w) => w.severity === "red")) return "red";
    if (warnings.some((w) => w.severity === "amber")) return "amber";
    return "green";
  }

  // --- the card -------------------------------------------------------------------------------
  function card(colour) {
    const section = $("card");
    section.hidden = false;
    section.className = "result card " + colour;
    section.innerHTML = "";
    return section;
  }

  function clearCard() {
    current = null; check = null; acknowledged = false;
    const section = $("card");
    section.innerHTML = "";
    section.hidden = true;
  }

  // A refusal stands where the card stood, in plain words, with no action left on screen.
  function showRefusal(data, what) {
    current = null; check = null; acknowledged = false;
    const section = card("red");
    section.appendChild(el("div", { class: "refusal-title", text: what || "Refused" }));
    section.appendChild(el("p", { class: "refusal", text: (data && data.detail) || "Refused." }));
    if (data && data.technical) section.appendChild(el("p", { class: "technical", text: "Detail: " + data.technical }));
    section.appendChild(el("p", { class: "hint", text: "Nothing was done. Scan again, or set the item aside and call the pharmacist." }));
    beep();
    historyAdd("refused: " + ((data && data.detail) || "refused"), "red");
  }

  function showDone(text, colour) {
    current = null; check = null; acknowledged = false;
    const section = card(colour);
    section.appendChild(el("div", { class: "done", text }));
    section.appendChild(el("p", { class: "hint", text: "Scan the next item." }));
  }

  function fact(label, value, cls) {
    return el("div", {}, [el("dt", { text: label }), el("dd", { class: cls || "", text: shown(value) })]);
  }

  // The room-temperature clock as the server counts it: time used, time left of the label's allowance.
  function roomTemperature(c) {
    if (!c) return null;
    if (c.allowance_days === null) return c.used_hours > 0 ? c.used_hours + " h (the label allows none)" : "not allowed by the label";
    const left = c.remaining_hours <= 0 ? "allowance used up" : Math.floor(c.remaining_hours / 24) + " d " + Math.round(c.remaining_hours % 24) + " h left";
    return c.used_hours + " h used of " + c.allowance_days + " d · " + left + (c.clock_running ? " · clock running" : "");
  }

  function showCarton(data) {
    current = data; check = null; acknowledged = false;
    const product = data.product, vial = data.vial, lot = data.lot_record;
    const colour = worstSeverity(data.warnings);
    const section = card(colour);
    const status = vial ? vial.status.replace(/_/g, " ") : (lot ? "not received" : "new carton");
    section.appendChild(el("div", { class: "result-head" }, [
      el("div", {}, [
        el("div", { class: "brand", text: product ? product.product.brand : "Unknown product" }),
        el("div", { class: "sub", text: product ? product.grams + " g" + (product.volume_ml ? " / " + product.volume_ml + " mL" : "") + " · GTIN " + product.gtin : "GTIN " + data.gtin }),
      ]),
      el("div", { class: "status-pill " + colour, text: status }),
    ]));
    const warnings = el("ul", { class: "warnings" });
    data.warnings.forEach((w) => {
      const li = el("li", { class: "warning " + w.severity, text: w.detail });
      li.dataset.code = w.code;
      warnings.appendChild(li);
    });
    section.appendChild(warnings);
    // What to do comes before the details: the checks for the patient, then the actions.
    section.appendChild(el("div", { id: "check-box", class: "check-box" }));
    section.appendChild(el("div", { id: "card-actions", class: "actions" }));
    section.appendChild(el("dl", { class: "facts" }, [
      fact("Lot", data.lot || (lot && lot.lot_number), "code"),
      fact("Expiry", data.expiry || (lot && lot.expiry_date)),
      fact("Beyond use", vial && vial.beyond_use_date),
      fact("Serial", data.serial || (vial && vial.serial), "code"),
      fact("Location", vial && vial.location ? vial.location.name : null),
      fact("Room temperature", roomTemperature(data.cold_chain)),
    ]));
    renderActions();
    if (colour === "red") beep();
    historyAdd((product ? product.product.brand : "GTIN " + data.gtin) + " lot " + shown(data.lot) + " serial " + shown(data.serial), colour);
    if ((data.actions || []).includes("dispense") && selectedSession()) runCheck();
  }

  function showLocation(location) {
    const select = $("location-select");
    if (select) select.value = location.code;
    if (mode === "receive") $("receive-location-name").textContent = location.name;
    historyAdd("location " + location.code, "green");
    message("Location chosen: " + location.name + " (" + location.code + ").", "green");
  }

  function showPatient(data) {
    const sessions = data.sessions || [];
    const select = $("session-select");
    if (!select) return;
    historyAdd("wristband " + data.patient.mrn, "green");
    const today = sessions.filter((s) => [...select.options].some((o) => o.value === String(s.id)));
    if (today.length === 1) {
      select.value = String(today[0].id);
      sessionChosen("Wristband: " + data.patient.name + " · MRN " + data.patient.mrn + ".");
    } else if (today.length > 1) {
      select.value = "";
      sessionChosen();
      message(data.patient.name + " has " + today.length + " open sessions today: choose one.", "amber");
    } else {
      select.value = "";
      sessionChosen();
      message(data.patient.name + " (MRN " + data.patient.mrn + ") has no open session today.", "amber");
    }
  }

  // --- the patient ----------------------------------------------------------------------------
  function selectedSession() { const s = $("session-select"); return s ? s.value : ""; }
  function selectedLocation() { const s = $("location-select"); return s ? s.value : ""; }

  function sessionPatient() {
    const select = $("session-select");
    const option = select && select.value ? select.selectedOptions[0] : null;
    return option ? { mrn: option.dataset.mrn, name: option.dataset.name, dob: option.dataset.dob,
                      grams: option.dataset.grams, route: option.dataset.route } : null;
  }

  function sessionChosen(note) {
    const box = $("patient-box");
    const patient = sessionPatient();
    if (patient) {
      box.className = "patient chosen";
      $("patient-text").textContent = patient.name + " · MRN " + patient.mrn + " · born " + patient.dob +
        " · " + patient.grams + " g " + patient.route;
      if (note) message(note, "green");
    } else {
      box.className = "patient none";
      $("patient-text").textContent = "None identified: scan the wristband, or choose the session.";
    }
    if (current && current.vial) { check = null; acknowledged = false; renderActions(); if (patient) runCheck(); }
  }

  // --- the dispense check ---------------------------------------------------------------------
  async function runCheck() {
    const session = selectedSession();
    if (!current || !current.vial || !session) return;
    const vialId = current.vial.id;
    const result = await api("POST", "/api/sessions/" + session + "/dispense-check", { vial: vialId });
    if (!current || !current.vial || current.vial.id !== vialId || selectedSession() !== session) return;  // a newer scan won
    if (!result.ok) { showRefusal(result.data, "Cannot check this vial for the session"); return; }
    check = result.data;
    acknowledged = false;
    renderCheck();
    renderActions();
    // The card's colour follows the check: red while something must be decided, amber for cautions.
    const base = worstSeverity(current.warnings);
    const colour = base === "red" || check.refusal || blockers().length ? "red" : (check.cautions.length || base === "amber" ? "amber" : "green");
    $("card").className = "result card " + colour;
    const pill = document.querySelector("#card .status-pill");
    if (pill) pill.className = "status-pill " + colour;
  }

  function renderCheck() {
    const box = $("check-box");
    if (!box) return;
    box.innerHTML = "";
    if (!check) return;
    const p = check.patient;
    box.appendChild(el("div", { class: "for-patient" }, [
      el("span", { class: "label", text: "For" }),
      el("strong", { text: p.name }), " · MRN ", el("strong", { class: "code", text: p.mrn }), " · born " + p.date_of_birth,
    ]));
    if (check.refusal) box.appendChild(el("div", { class: "warning red", text: check.refusal.detail }));
    check.contraindications.forEach((c) => {
      const state = c.override ? " Override " + c.override.status + "." : " A pharmacist must decide.";
      const li = el("div", { class: "warning " + (c.override && c.override.status === "granted" ? "amber" : "red"),
                             text: "Contraindication: " + c.detail + state });
      li.dataset.check = c.check;
      box.appendChild(li);
      box.appendChild(el("div", { class: "source", text: "Source: " + c.source }));
    });
    check.cautions.forEach((c) => {
      const li = el("div", { class: "warning amber", text: "Caution: " + c.detail });
      li.dataset.check = c.check;
      box.appendChild(li);
    });
    const d = check.dose;
    const doseText = "Dose: " + d.given_grams + " g after this vial, of " + d.ordered_grams + " g ordered (tolerance " + d.tolerance_grams + " g).";
    box.appendChild(el("div", { class: "dose " + (d.exceeds ? (d.override && d.override.status === "granted" ? "amber" : "red") : ""),
                                text: doseText + (d.exceeds ? " More than the smallest vial over the order." : "") }));
    renderAuthorisation(box);
    if (check.contraindications.some((c) => !c.override || c.override.status !== "granted") || (d.exceeds && !(d.override && d.override.status === "granted")) || check.refusal || authorisationBlockers().length) beep();
  }

  // --- the treatment authorisation on the card: doses left, the end date, and its refusals ------
  function renderAuthorisation(box) {
    const a = check.authorisation;
    if (a) {
      const brand = a.product ? a.product : "any " + a.route + " brand";
      const ends = a.days_left < 0 ? "ended " + a.valid_until : "valid until " + a.valid_until + " (" + a.days_left + " day" + (a.days_left === 1 ? "" : "s") + ")";
      const soon = a.days_left <= 14 || a.doses_remaining_after_this === 0;
      const line = el("div", { class: "authorisation " + (soon ? "amber" : "") });
      line.appendChild(document.createTextNode("Authorisation " + (a.payer_reference || "#" + a.id) + " · " + brand +
        " · dose " + a.dose_number + " of " + a.doses + ", " + a.doses_remaining_after_this + " left after this · " + ends + "."));
      box.appendChild(line);
    }
    (check.authorisation_checks || []).forEach((c) => {
      const state = c.override ? " Override " + c.override.status + "." : " A pharmacist must decide.";
      const li = el("div", { class: "warning " + (c.override && c.override.status === "granted" ? "amber" : "red"),
                             text: "Authorisation: " + c.detail + state });
      li.dataset.check = c.check;
      box.appendChild(li);
    });
  }

  function authorisationBlockers() {
    if (!check || !check.authorisation_checks) return [];
    return check.authorisation_checks.filter((c) => !c.override || c.override.status !== "granted").map((c) => c.check);
  }

  // --- actions --------------------------------------------------------------------------------
  const LABELS = {
    dispense: "Dispense", receive: "Receive", move: "Move", waste: "Waste",
    return_to_supplier: "Return to supplier", return_to_stock: "Return to stock, unopened",
    waste_dispensed: "Waste opened vial", quarantine_lot: "Quarantine lot", release_lot: "Release lot",
  };
  const KEYS = { dispense: "F6", receive: "F7", move: "F8", waste: "F9", return_to_supplier: "F10", return_to_stock: "F11" };

  function button(label, key, onClick, cls) {
    const b = el("button", { type: "button", class: cls || "" });
    b.textContent = label;
    if (key) b.appendChild(el("kbd", { text: key }));
    b.addEventListener("click", onClick);
    return b;
  }

  function actionLabel(action) {
    const vial = current && current.vial;
    const serial = vial ? vial.serial : (current && current.serial) || "";
    if (action === "dispense") {
      const patient = sessionPatient();
      return "Dispense " + serial + (patient ? " to " + patient.name : " (choose the patient first)");
    }
    if (action === "receive") return "Receive " + (serial || "carton") + " into " + selectedLocation();
    if (action === "move") return "Move " + serial + " to " + selectedLocation();
    if (action === "quarantine_lot" || action === "release_lot") return LABELS[action] + " " + (current.lot_record ? current.lot_record.lot_number : "");
    return LABELS[action] + " " + serial;
  }

  function blockers() {
    if (!check) return [];
    const open = check.contraindications.filter((c) => !c.override || c.override.status !== "granted");
    const dose = check.dose.exceeds && !(check.dose.override && check.dose.override.status === "granted");
    return open.map((c) => c.check).concat(authorisationBlockers()).concat(dose ? ["dose_excess"] : []);
  }

  function renderActions() {
    const box = $("card-actions");
    if (!box) return;
    box.innerHTML = "";
    if (!current) return;
    const actions = current.actions || [];
    actions.forEach((action) => {
      const b = button(actionLabel(action), KEYS[action], () => runAction(action), action === "dispense" ? "primary" : "");
      b.dataset.action = action;
      if (action === "dispense") {
        b.disabled = !selectedSession() || !check || !check.ready || blockers().length > 0 ||
          (check.cautions.length > 0 && !acknowledged);
      }
      box.appendChild(b);
    });
    if (check && check.cautions.length && !acknowledged && blockers().length === 0) {
      box.insertBefore(button("Acknowledge the cautions", "F4", acknowledge, "amber"), box.firstChild);
    }
    blockers().forEach((name) => {
      const asked = name === "dose_excess" ? check.dose.override :
        (check.contraindications.concat(check.authorisation_checks || []).find((c) => c.check === name) || {}).override;
      if (cfg.canOverride) {
        box.appendChild(button("Override " + name.replace(/_/g, " ") + " (pharmacist, with reason)", "", () => override(name)));
      } else if (!asked || asked.status === "declined") {
        box.appendChild(button("Ask a pharmacist to decide (" + name.replace(/_/g, " ") + ")", "", () => askOverride(name)));
      }
    });
  }

  function acknowledge() {
    if (!check || !check.cautions.length) return;
    acknowledged = true;
    historyAdd("cautions acknowledged for " + (current && current.vial ? current.vial.serial : ""), "amber");
    renderActions();
  }

  async function askOverride(name) {
    if (!current || !check || busy) return;
    const note = await prompt("Note for the pharmacist (optional)", "Say why this product is needed, e.g. the only brand in stock.", true);
    if (note === null) return;
    const result = await api("POST", "/api/overrides/", { session: check.session, vial: current.vial.id, check: name, note });
    if (!result.ok) { showRefusal(result.data); return; }
    message("Asked a pharmacist to decide on " + name.replace(/_/g, " ") + ". The vial waits until they do.", "amber");
    historyAdd("override asked: " + name, "amber");
    runCheck();
  }

  async function override(name) {
    if (!current || !check || busy) return;
    const reason = await prompt("Pharmacist's reason for the override", "Kept with the dispense and its history.");
    if (reason === null) return;
    const asked = await api("POST", "/api/overrides/", { session: check.session, vial: current.vial.id, check: name });
    if (!asked.ok) { showRefusal(asked.data); return; }
    if (asked.data.status !== "granted") {
      const granted = await api("POST", "/api/overrides/" + asked.data.id + "/grant", { reason });
      if (!granted.ok) { showRefusal(granted.data); return; }
    }
    historyAdd("override granted: " + name, "amber");
    runCheck();
  }

  async function runAction(action) {
    if (busy) return;
    if (!current) { message("Nothing to act on: scan a carton or a vial first.", "amber"); return; }
    const actions = current.actions || [];
    if (!actions.includes(action)) {
      message((LABELS[action] || action) + " is not offered for what was scanned.", "amber");
      return;
    }
    const vial = current.vial;
    const serial = vial ? vial.serial : current.serial;
    busy = true;
    try {
      let result = null;
      if (action === "dispense") {
        const patient = sessionPatient();
        if (!patient) { message("Identify the patient first: scan the wristband or choose the session.", "amber"); return; }
        if (!check) { await runCheck(); if (!check) return; }
        if (blockers().length) { message("This vial cannot be given until a pharmacist decides (see the card).", "red"); return; }
        if (check.cautions.length && !acknowledged) { message("Read and acknowledge the cautions first (F4).", "amber"); return; }
        result = await api("POST", "/api/sessions/" + selectedSession() + "/dispenses", {
          vial: vial.id, acknowledge: check.cautions.map((c) => c.check), patient_mrn: patient.mrn,
        });
        if (result.ok) {
          const flags = result.data.flags_raised || [];
          if (flags.length) {
            const advice = result.data.advice || "The pharmacist must review this infusion.";
            const isSwitch = flags.some((f) => ["switch", "mixed", "route"].includes(f.kind));
            showDone("Dispensed " + serial + " to " + patient.name + ".", "amber");
            message((isSwitch ? "BRAND SWITCH: " : "WATCH THIS INFUSION: ") + advice, "amber");
            historyAdd("dispensed " + serial + " to " + patient.name + (isSwitch ? " (brand switch)" : " (watch)"), "amber");
          } else {
            showDone("Dispensed " + serial + " to " + patient.name + " (MRN " + patient.mrn + ").", "green");
            message("", "");
            historyAdd("dispensed " + serial + " to " + patient.name, "green");
          }
          return;
        }
      } else if (action === "receive") {
        result = await api("POST", "/api/receipts", { location: selectedLocation(), scans: [current.raw] });
        if (result.ok) { showDone("Received " + shown(serial) + " into " + selectedLocation() + ".", "green"); historyAdd("received " + shown(serial), "green"); return; }
      } else if (action === "move") {
        result = await api("POST", "/api/vials/" + vial.id + "/move", { location: selectedLocation() });
        if (result.ok) { showDone("Moved " + serial + " to " + selectedLocation() + ".", "green"); historyAdd("moved " + serial + " to " + selectedLocation(), "green"); return; }
      } else {
        const reason = await prompt("Reason: " + actionLabel(action), "Kept with the record and its history.");
        if (reason === null || !current || current.vial !== vial) return;
        const url = {
          waste: "/api/vials/" + (vial && vial.id) + "/waste",
          return_to_supplier: "/api/vials/" + (vial && vial.id) + "/return",
          return_to_stock: "/api/dispenses/" + current.live_dispense + "/return",
          waste_dispensed: "/api/dispenses/" + current.live_dispense + "/waste",
          quarantine_lot: "/api/lots/" + (current.lot_record && current.lot_record.id) + "/quarantine",
          release_lot: "/api/lots/" + (current.lot_record && current.lot_record.id) + "/release",
        }[action];
        const body = action === "return_to_stock" ? { location: selectedLocation(), reason } : { reason };
        result = await api("POST", url, body);
        if (result.ok) {
          const done = actionLabel(action).replace(/^Waste /, "Wasted ").replace(/^Return /, "Returned ")
            .replace(/^Quarantine /, "Quarantined ").replace(/^Release /, "Released ") + ".";
          showDone(done, "green");
          historyAdd(done, "green");
          return;
        }
      }
      if (result && !result.ok) showRefusal(result.data);
    } finally {
      busy = false;
      input.focus();
    }
  }

  // --- the reason prompt: a small dialog that gives the scan field its focus back -------------
  function prompt(label, hint, optional) {
    const dialog = $("reason-dialog");
    const field = $("reason-input");
    $("reason-label").textContent = label;
    $("reason-hint").textContent = hint || "";
    field.value = "";
    field.required = !optional;
    return new Promise((resolve) => {
      let settled = false;
      function finish(value) {
        if (settled) return;
        settled = true;
        dialog.removeEventListener("close", onClose);
        if (dialog.open) dialog.close();
        input.focus();
        resolve(value);
      }
      function onClose() { finish(dialog.returnValue === "ok" && (optional || field.value.trim()) ? field.value.trim() : null); }
      dialog.addEventListener("close", onClose);
      $("reason-cancel").onclick = () => { dialog.returnValue = "cancel"; finish(null); };
      dialog.returnValue = "";
      dialog.showModal();
      field.focus();
      dialog._cancel = () => finish(null);
    });
  }

  function cancelPrompt() {
    const dialog = $("reason-dialog");
    if (dialog.open && dialog._cancel) dialog._cancel();
  }

  // --- scanning -------------------------------------------------------------------------------
  async function handleScan(raw) {
    if (!raw.replace(new RegExp(GS, "g"), "").trim()) return;   // a stray Enter, or only separators
    if (mode === "receive") {
      const result = await api("POST", "/api/scan", { barcode: raw });
      if (result.ok && result.data.kind === "location") { showLocation(result.data.location); return; }
      return addToReceipt(raw);
    }
    // The card is cleared before asking, so nothing of the previous scan can be acted on meanwhile.
    clearCard();
    message("", "");
    const result = await api("POST", "/api/scan", { barcode: raw });
    if (!result.ok) { showRefusal(result.data, "Not something we can use"); return; }
    const data = result.data;
    if (data.kind === "location") { showLocation(data.location); return; }
    if (data.kind === "patient") { showPatient(data); return; }
    data.raw = raw;
    showCarton(data);
  }

  // A fast scanner's next carton can arrive while the server is still answering about the one
  // before. Scans are handled one at a time, in the order they were read: a case's receipt is
  // checked as a whole list, and the card always ends on the last scan. The card is cleared as
  // the scan arrives, so nothing left on screen can be acted on while it waits its turn.
  let scanQueue = Promise.resolve();
  function queueScan(raw) {
    if (mode === "single" && raw.replace(new RegExp(GS, "g"), "").trim()) clearCard();
    const handled = scanQueue.then(() => handleScan(raw));
    scanQueue = handled.catch(() => {});
    return handled;
  }

  // --- receiving a case -----------------------------------------------------------------------
  // The page keeps the raw scans; the server says what each one is, what is wrong with it, which
  // repeat another, and the exact totals by lot (POST /api/receipts/check).
  async function checkReceipt() {
    const result = await api("POST", "/api/receipts/check", { scans: receiveList.map((r) => r.raw) });
    if (!result.ok) { showRefusal(result.data); return false; }
    receiptCheck = result.data;
    receiveList.forEach((row, i) => {
      const line = receiptCheck.lines[i];
      row.line = line;
      row.problem = line.problem ? line.problem.detail : "";
    });
    return true;
  }

  async function addToReceipt(raw) {
    receiveList.push({ raw, line: null, problem: "" });
    if (!(await checkReceipt())) { receiveList.pop(); return; }
    const added = receiveList[receiveList.length - 1];
    const line = added.line;
    if (line.problem && line.problem.code === "repeated_in_case") {
      receiveList.pop();
      await checkReceipt();
      renderReceipt();
      message(line.problem.detail, "red");
      return;
    }
    renderReceipt();
    const colour = line.problem ? "red" : (line.cautions.length ? "amber" : "green");
    historyAdd("to receive: lot " + shown(line.lot) + " serial " + shown(line.serial) + (line.problem ? " (" + line.problem.detail + ")" : ""), colour);
    message(line.problem ? line.problem.detail : line.cautions.join(" "), colour === "green" ? "" : colour);
  }

  function renderReceipt() {
    const body = $("receive-rows");
    body.innerHTML = "";
    receiveList.forEach((row, i) => {
      const d = row.line || {};
      const brand = d.brand ? d.brand + " " + d.grams + " g" : "GTIN " + (d.gtin || "?");
      const tr = el("tr", { class: row.problem ? "red" : (d.cautions && d.cautions.length ? "amber" : "") });
      const status = row.problem || (d.cautions && d.cautions.length ? d.cautions.join(" ") : "ok");
      [i + 1, brand, shown(d.lot), shown(d.expiry), d.serial || "(none: internal serial)", status].forEach((v) => tr.appendChild(el("td", { text: String(v) })));
      const remove = button("Remove", "", async () => { receiveList.splice(i, 1); await checkReceipt(); renderReceipt(); input.focus(); }, "link");
      tr.appendChild(el("td", {}, [remove]));
      body.appendChild(tr);
    });
    const t = $("receive-totals");
    t.innerHTML = "";
    (receiveList.length && receiptCheck ? receiptCheck.totals : []).forEach((total) => {
      t.appendChild(el("div", { class: "total", text: total.brand + " · lot " + total.lot + ": " + total.vials + " vial(s), " + total.grams + " g" }));
    });
    t.appendChild(el("div", { class: "total strong", id: "receive-count", text: "Total: " + receiveList.length + " carton(s)" }));
    $("receive-confirm").disabled = receiveList.length === 0;
  }

  async function confirmReceipt() {
    if (!receiveList.length || busy) return;
    busy = true;
    try {
      const location = selectedLocation();
      const result = await api("POST", "/api/receipts", { location, scans: receiveList.map((r) => r.raw) });
      if (!result.ok) {
        // All-or-nothing: nothing was received. Point at the scan that was refused.
        const index = result.data.scan_index;
        if (index !== undefined && receiveList[index]) receiveList[index].problem = result.data.detail;
        renderReceipt();
        message(result.data.detail, "red");
        return;
      }
      message("Received " + result.data.received + " vial(s) into " + location + ".", "green");
      historyAdd("received a case of " + result.data.received + " into " + location, "green");
      receiveList = [];
      renderReceipt();
    } finally {
      busy = false;
      input.focus();
    }
  }

  function setMode(next) {
    mode = next;
    $("mode-single").classList.toggle("active", mode === "single");
    $("mode-single").setAttribute("aria-pressed", String(mode === "single"));
    const rb = $("mode-receive");
    if (rb) { rb.classList.toggle("active", mode === "receive"); rb.setAttribute("aria-pressed", String(mode === "receive")); }
    const panel = $("receive-panel");
    if (panel) panel.hidden = mode !== "receive";
    clearCard();
    if (mode === "receive") {
      const select = $("location-select");
      $("receive-location-name").textContent = select && select.selectedOptions[0] ? select.selectedOptions[0].textContent : "—";
    }
    input.focus();
  }

  // --- keys -----------------------------------------------------------------------------------
  input.addEventListener("keydown", (event) => {
    // Some wedge scanners send the group separator as Ctrl+] instead of the character itself.
    if (event.ctrlKey && (event.key === "]" || event.code === "BracketRight")) {
      event.preventDefault();
      const start = input.selectionStart, end = input.selectionEnd;
      input.value = input.value.slice(0, start) + GS + input.value.slice(end);
      input.selectionStart = input.selectionEnd = start + 1;
      return;
    }
    if (event.key === "Enter") {
      event.preventDefault();
      if (event.ctrlKey && mode === "receive") { confirmReceipt(); return; }
      const raw = input.value;
      input.value = "";
      queueScan(raw);
    }
  });

  const FUNCTION_KEYS = {
    F2: () => setMode("single"), F3: () => $("mode-receive") && setMode("receive"), F4: acknowledge,
    F6: () => runAction("dispense"), F7: () => runAction("receive"), F8: () => runAction("move"),
    F9: () => runAction("waste"), F10: () => runAction("return_to_supplier"), F11: () => runAction("return_to_stock"),
  };
  document.addEventListener("keydown", (event) => {
    if (FUNCTION_KEYS[event.key] && !$("reason-dialog").open) { event.preventDefault(); FUNCTION_KEYS[event.key](); return; }
    if (event.ctrlKey && event.key === "Enter" && mode === "receive" && event.target !== input) confirmReceipt();
  });

  // A scanner types far faster than a person: at least BURST_MIN_CHARS keystrokes averaging under
  // BURST_AVERAGE_MS apart, ending in Enter, typed while another field has the cursor, are a scan
  // (a busy workstation may stretch one gap, so the average decides, and a pause over
  // BURST_BREAK_MS starts afresh). The field gets back what it held before, and the scan goes
  // where every scan goes.
  const BURST_AVERAGE_MS = 40, BURST_BREAK_MS = 150, BURST_MIN_CHARS = 6;
  let burst = { chars: "", first: 0, last: 0, target: null, before: null };
  function fieldValue(target) { return target && "value" in target ? target.value : null; }
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target === input || event.ctrlKey || event.altKey || event.metaKey) return;
    const now = performance.now();
    if (event.key.length === 1) {
      if (now - burst.last > BURST_BREAK_MS || burst.target !== target) {
        burst = { chars: "", first: now, last: now, target, before: fieldValue(target) };
      }
      burst.chars += event.key;
      burst.last = now;
      return;
    }
    const typed = burst.chars.replace(new RegExp(GS, "g"), "").length;
    if (event.key === "Enter" && burst.target === target && now - burst.last <= BURST_BREAK_MS &&
        typed >= BURST_MIN_CHARS && (now - burst.first) / typed <= BURST_AVERAGE_MS) {
      event.preventDefault();
      event.stopPropagation();
      if (burst.before !== null && "value" in target) target.value = burst.before;
      const raw = burst.chars;
      burst = { chars: "", first: 0, last: 0, target: null, before: null };
      cancelPrompt();
      input.focus();
      queueScan(raw);
    }
  }, true);
  // A group separator arrives as text, not as a key: it belongs to the burst under way.
  document.addEventListener("input", (event) => {
    if (event.target !== input && event.data && event.data.indexOf(GS) >= 0 && burst.target === event.target) {
      burst.chars += event.data;
      burst.last = performance.now();
    }
  }, true);

  // --- focus ----------------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const tag = event.target.tagName;
    if ($("reason-dialog").open) return;
    if (!["SELECT", "INPUT", "OPTION", "TEXTAREA"].includes(tag)) input.focus();
  });
  ["session-select", "location-select"].forEach((id) => {
    const select = $(id);
    if (!select) return;
    select.addEventListener("change", () => {
      if (id === "session-select") sessionChosen();
      if (id === "location-select") {
        if (mode === "receive") $("receive-location-name").textContent = select.selectedOptions[0].textContent;
        renderActions();
      }
      input.focus();
    });
  });
  $("reason-dialog").addEventListener("cancel", () => setTimeout(() => input.focus(), 0));
  setInterval(() => {
    const a = document.activeElement;
    if ((!a || a === document.body) && !$("reason-dialog").open) input.focus();
  }, 400);

  $("mode-single").addEventListener("click", () => setMode("single"));
  if ($("mode-receive")) $("mode-receive").addEventListener("click", () => setMode("receive"));
  if ($("receive-confirm")) $("receive-confirm").addEventListener("click", confirmReceipt);
  if ($("receive-clear")) $("receive-clear").addEventListener("click", () => { receiveList = []; renderReceipt(); input.focus(); });
  input.focus();
})();
