// Scan station: one always-focused field driven by a keyboard-wedge scanner. Every action calls
// the JSON API; the page holds no rules of its own, it only shows what the API says.
(function () {
  "use strict";
  const cfg = window.SCAN_STATION || {};
  const GS = "\u001d";
  const $ = (id) => document.getElementById(id);
  const input = $("scan-input");
  let mode = "single";          // "single" | "receive"
  let current = null;           // last scan result from /api/scan
  let receiveList = [];         // [{raw, data}]
  let busy = false;

  const api = window.IvigApi.call;

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

  function text(id, value) { $(id).textContent = value === null || value === undefined || value === "" ? "—" : value; }

  function worstSeverity(warnings) {
    if (warnings.some((w) => w.severity === "red")) return "red";
    if (warnings.some((w) => w.severity === "amber")) return "amber";
    return "green";
  }

  // --- showing a scan -------------------------------------------------------------------------
  function showResult(data) {
    current = data;
    const section = $("result");
    section.hidden = false;
    const product = data.product;
    const vial = data.vial;
    const lot = data.lot_record;
    text("r-brand", product ? product.product.brand : "Unknown product");
    text("r-presentation", product ? (product.grams + " g" + (product.volume_ml ? " / " + product.volume_ml + " mL" : "") + " · GTIN " + product.gtin) : "GTIN " + data.gtin);
    text("r-lot", data.lot || (lot && lot.lot_number));
    text("r-expiry", data.expiry || (lot && lot.expiry_date));
    text("r-bud", vial ? vial.beyond_use_date : null);
    text("r-serial", data.serial || (vial && vial.serial));
    text("r-location", vial && vial.location ? vial.location.name : null);
    const status = vial ? vial.status.replace(/_/g, " ") : (lot ? "not received" : "new");
    text("r-status", status);
    const colour = worstSeverity(data.warnings);
    section.className = "result card " + colour;
    $("r-status").className = "status-pill " + colour;
    const list = $("r-warnings");
    list.innerHTML = "";
    data.warnings.forEach((w) => {
      const li = document.createElement("li");
      li.className = "warning " + w.severity;
      li.dataset.code = w.code;
      li.textContent = w.detail;
      list.appendChild(li);
    });
    renderActions(data.actions || []);
    if (colour === "red") beep();
    if ($("action-panel")) $("action-panel").hidden = !(data.actions || []).length;
  }

  const ACTION_LABELS = {
    dispense: ["Dispense to session", "F6"],
    receive: ["Receive into location", "F7"],
    move: ["Move to location", "F8"],
    waste: ["Waste (reason)", "F9"],
    return_to_supplier: ["Return to supplier (reason)", "F10"],
    return_to_stock: ["Return to stock, unopened (reason)", "F11"],
    waste_dispensed: ["Waste opened vial (reason)", ""],
    quarantine_lot: ["Quarantine lot", ""],
    release_lot: ["Release lot", ""],
  };

  function renderActions(actions) {
    const box = $("r-actions");
    box.innerHTML = "";
    actions.filter((a) => ACTION_LABELS[a]).forEach((a) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = a === "dispense" ? "primary" : "";
      b.dataset.action = a;
      b.innerHTML = ACTION_LABELS[a][0] + (ACTION_LABELS[a][1] ? " <kbd>" + ACTION_LABELS[a][1] + "</kbd>" : "");
      b.addEventListener("click", () => runAction(a));
      box.appendChild(b);
    });
  }

  function selectedLocation() { const s = $("location-select"); return s ? s.value : ""; }
  function selectedSession() { const s = $("session-select"); return s ? s.value : ""; }
  function reason() { const r = $("reason-input"); return r ? r.value.trim() : ""; }

  async function runAction(action) {
    if (!current || busy) return;
    const vial = current.vial;
    let result;
    busy = true;
    try {
      if (action === "dispense") {
        const session = selectedSession();
        if (!session) { message("Choose an open session first.", "amber"); return; }
        result = await api("POST", "/api/sessions/" + session + "/dispenses", { vial: vial.id });
        if (result.ok) {
          const flags = result.data.flags_raised || [];
          const label = $("session-select").selectedOptions[0].textContent.split(" · ")[0];
          if (flags.length) {
            const advice = result.data.advice || "Brand switch: the pharmacist must review it.";
            message("Dispensed to " + label + ". BRAND SWITCH: " + advice, "amber");
            historyAdd("dispensed " + vial.serial + " to " + label + " (brand switch)", "amber");
          } else {
            message("Dispensed " + vial.serial + " to " + label + ".", "green");
            historyAdd("dispensed " + vial.serial + " to " + label, "green");
          }
        }
      } else if (action === "receive") {
        result = await api("POST", "/api/receipts", { location: selectedLocation(), scans: [current.raw] });
        if (result.ok) { message("Received 1 vial into " + selectedLocation() + ".", "green"); historyAdd("received " + (current.serial || current.lot), "green"); }
      } else if (action === "move") {
        result = await api("POST", "/api/vials/" + vial.id + "/move", { location: selectedLocation() });
        if (result.ok) { message("Moved " + vial.serial + " to " + selectedLocation() + ".", "green"); historyAdd("moved " + vial.serial + " to " + selectedLocation(), "green"); }
      } else if (action === "waste" || action === "return_to_supplier") {
        const url = "/api/vials/" + vial.id + (action === "waste" ? "/waste" : "/return");
        if (!reason()) { message("Type a reason first (the Reason field), then choose the action again.", "amber"); $("reason-input").focus(); return; }
        result = await api("POST", url, { reason: reason() });
        if (result.ok) { message((action === "waste" ? "Wasted " : "Returned ") + vial.serial + ".", "green"); historyAdd(action.replace(/_/g, " ") + " " + vial.serial, "green"); $("reason-input").value = ""; }
      } else if (action === "return_to_stock" || action === "waste_dispensed") {
        // A dispensed vial comes back through its dispense, which is kept: the scan named it.
        if (!reason()) { message("Type a reason first (the Reason field), then choose the action again.", "amber"); $("reason-input").focus(); return; }
        result = action === "return_to_stock"
          ? await api("POST", "/api/dispenses/" + current.live_dispense + "/return", { location: selectedLocation(), reason: reason() })
          : await api("POST", "/api/dispenses/" + current.live_dispense + "/waste", { reason: reason() });
        if (result.ok) {
          const done = action === "return_to_stock" ? "Returned " + vial.serial + " to " + selectedLocation() : "Wasted opened vial " + vial.serial;
          message(done + ".", "green"); historyAdd(done, "green"); $("reason-input").value = "";
        }
      } else if (action === "quarantine_lot" || action === "release_lot") {
        const lotId = current.lot_record.id;
        if (!reason()) { message("Type a reason first (the Reason field), then choose the action again.", "amber"); $("reason-input").focus(); return; }
        result = await api("POST", "/api/lots/" + lotId + (action === "quarantine_lot" ? "/quarantine" : "/release"), { reason: reason() });
        if (result.ok) { message("Lot " + current.lot_record.lot_number + " " + (action === "quarantine_lot" ? "quarantined." : "released."), "green"); }
      }
      if (result && !result.ok) {
        refusal(result.data);
        return;
      }
      if (result && result.ok && action === "dispense") showDispensed(result.data);
      else if (result && result.ok) await lookup(current.raw, true);
    } finally {
      busy = false;
      input.focus();
    }
  }

  function showDispensed(data) {
    // The vial is now given: show that, not a red "already dispensed" from a fresh look-up.
    const flagged = (data.flags_raised || []).length > 0;
    const colour = flagged ? "amber" : "green";
    text("r-status", "dispensed");
    text("r-location", null);
    $("result").className = "result card " + colour;
    $("r-status").className = "status-pill " + colour;
    $("r-warnings").innerHTML = "";
    if (flagged) addWarning("brand_switch", "amber", "Brand switch: " + (data.advice || "a pharmacist must review it."));
    renderActions([]);
    current = null;
  }

  function addWarning(code, severity, detail) {
    const li = document.createElement("li");
    li.className = "warning " + severity;
    li.dataset.code = code;
    li.textContent = detail;
    $("r-warnings").appendChild(li);
  }

  function refusal(data) {
    const detail = (data && data.detail) || "Refused.";
    message(detail, "red");
    historyAdd("refused: " + detail, "red");
  }

  // --- scanning -------------------------------------------------------------------------------
  async function lookup(raw, quiet) {
    const result = await api("POST", "/api/scan", { barcode: raw });
    if (!result.ok) {
      refusal(result.data);
      return null;
    }
    result.data.raw = raw;
    showResult(result.data);
    if (!quiet) {
      const colour = worstSeverity(result.data.warnings);
      historyAdd((result.data.product ? result.data.product.product.brand : "GTIN " + result.data.gtin) + " lot " + (result.data.lot || "—") + " serial " + (result.data.serial || "—"), colour);
      message("", "");
    }
    return result.data;
  }

  function locationFor(raw) {
    const code = raw.trim();
    return (cfg.locations || []).find((l) => l.code === code) || null;
  }

  async function handleScan(raw) {
    if (!raw.replace(new RegExp(GS, "g"), "").trim()) return;   // a stray Enter, or only separators
    const location = locationFor(raw);
    if (location) {
      const select = $("location-select");
      if (select) select.value = location.code;
      if (mode === "receive") $("receive-location-name").textContent = location.name;
      message("Location: " + location.name + ".", "green");
      historyAdd("location " + location.code, "green");
      return;
    }
    if (mode === "receive") return addToReceipt(raw);
    await lookup(raw, false);
  }

  // --- receiving a case -----------------------------------------------------------------------
  // The page keeps the raw scans; the server says what each one is, what is wrong with it, which
  // repeat another, and the exact totals by lot (POST /api/receipts/check).
  let receiptCheck = null;

  async function checkReceipt() {
    const result = await api("POST", "/api/receipts/check", { scans: receiveList.map((r) => r.raw) });
    if (!result.ok) { refusal(result.data); return false; }
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
      beep();
      return;
    }
    renderReceipt();
    const colour = line.problem ? "red" : (line.cautions.length ? "amber" : "green");
    historyAdd("to receive: lot " + (line.lot || "—") + " serial " + (line.serial || "—") + (line.problem ? " (" + line.problem.detail + ")" : ""), colour);
    if (line.problem) beep();
    message(line.cautions.join(" "), line.cautions.length ? "amber" : "");
  }

  function renderReceipt() {
    const body = $("receive-rows");
    body.innerHTML = "";
    receiveList.forEach((row, i) => {
      const d = row.line || {};
      const brand = d.brand ? d.brand + " " + d.grams + " g" : "GTIN " + (d.gtin || "?");
      const tr = document.createElement("tr");
      if (row.problem) tr.className = "red";
      else if (d.cautions && d.cautions.length) tr.className = "amber";
      const status = row.problem || (d.cautions && d.cautions.length ? d.cautions.join(" ") : "ok");
      [i + 1, brand, d.lot || "—", d.expiry || "—", d.serial || "(none: internal serial)", status].forEach((v) => {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      const td = document.createElement("td");
      const b = document.createElement("button"); b.type = "button"; b.textContent = "Remove"; b.className = "link";
      b.addEventListener("click", async () => { receiveList.splice(i, 1); await checkReceipt(); renderReceipt(); input.focus(); });
      td.appendChild(b); tr.appendChild(td);
      body.appendChild(tr);
    });
    const t = $("receive-totals");
    t.innerHTML = "";
    const totals = receiveList.length && receiptCheck ? receiptCheck.totals : [];
    totals.forEach((total) => {
      const div = document.createElement("div");
      div.className = "total";
      div.textContent = total.brand + " · lot " + total.lot + ": " + total.vials + " vial(s), " + total.grams + " g";
      t.appendChild(div);
    });
    const summary = document.createElement("div");
    summary.className = "total strong";
    summary.id = "receive-count";
    summary.textContent = "Total: " + receiveList.length + " carton(s)";
    t.appendChild(summary);
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
        refusal(result.data);
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
    if (mode === "receive") {
      const select = $("location-select");
      $("receive-location-name").textContent = select && select.selectedOptions[0] ? select.selectedOptions[0].textContent : "—";
      if ($("action-panel")) $("action-panel").hidden = false;
      $("result").hidden = true;
    }
    input.focus();
  }

  // --- wiring ---------------------------------------------------------------------------------
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
      handleScan(raw);
    }
  });

  document.addEventListener("keydown", (event) => {
    const keys = { F2: () => setMode("single"), F3: () => $("mode-receive") && setMode("receive"),
      F6: () => runAction("dispense"), F7: () => runAction("receive"), F8: () => runAction("move"),
      F9: () => runAction("waste"), F10: () => runAction("return_to_supplier"), F11: () => runAction("return_to_stock") };
    if (keys[event.key]) { event.preventDefault(); keys[event.key](); return; }
    if (event.ctrlKey && event.key === "Enter" && mode === "receive" && event.target !== input) confirmReceipt();
  });

  // Keep the scan field focused unless the user is choosing a session, a location or typing a reason.
  document.addEventListener("click", (event) => {
    const tag = event.target.tagName;
    if (!["SELECT", "INPUT", "OPTION", "TEXTAREA"].includes(tag)) input.focus();
  });
  setInterval(() => {
    const a = document.activeElement;
    if (!a || a === document.body) input.focus();
  }, 500);

  $("mode-single").addEventListener("click", () => setMode("single"));
  if ($("mode-receive")) $("mode-receive").addEventListener("click", () => setMode("receive"));
  if ($("receive-confirm")) $("receive-confirm").addEventListener("click", confirmReceipt);
  if ($("receive-clear")) $("receive-clear").addEventListener("click", () => { receiveList = []; renderReceipt(); input.focus(); });
  if ($("location-select")) $("location-select").addEventListener("change", () => {
    if (mode === "receive") $("receive-location-name").textContent = $("location-select").selectedOptions[0].textContent;
  });
  input.focus();
})();
