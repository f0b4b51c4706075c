// The pharmacist's review: three lists, each item decided in place through the JSON API, with the
// reason typed beside it. The page keeps no rules: the API says what is open and refuses what is not.
(function () {
  "use strict";
  const api = window.IvigApi.call;
  const $ = (id) => document.getElementById(id);
  const reasons = JSON.parse($("flag-reasons").textContent);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function message(text, colour) { window.IvigApi.message(text, colour); }

  function who(p) { return p.name + " · MRN " + p.mrn; }

  function empty(box, text) { box.appendChild(el("p", { class: "hint", text })); }
  // A list's count; past the API's counting cap it is a lower bound ("10000+").
  function total(page) { return page.count + (page.count_exact === false ? "+" : ""); }

  async function loadOverrides() {
    const box = $("overrides");
    const result = await api("GET", "/api/overrides/?status=requested");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    // Emptied once the answer is in, not before: never an old count beside an empty list.
    box.innerHTML = "";
    const rows = result.data.results;
    $("overrides-count").textContent = "(" + rows.length + ")";
    if (!rows.length) empty(box, "Nothing waiting.");
    rows.forEach((o) => {
      const reason = el("input", { placeholder: "Your reason (kept with the decision)", "aria-label": "Reason for override " + o.id });
      const grant = el("button", { type: "button", class: "primary", text: "Grant" });
      const decline = el("button", { type: "button", text: "Decline" });
      const decide = async (verb) => {
        const res = await api("POST", "/api/overrides/" + o.id + "/" + verb, { reason: reason.value });
        if (!res.ok) { message(res.data.detail, "red"); return; }
        message("Override " + (verb === "grant" ? "granted" : "declined") + " for " + who(o.patient) + ".", "green");
        loadOverrides();
      };
      grant.addEventListener("click", () => decide("grant"));
      decline.addEventListener("click", () => decide("decline"));
      box.appendChild(el("div", { class: "item", "data-override": String(o.id) }, [
        el("div", { class: "what", text: who(o.patient) + " · session " + o.session + " (" + o.scheduled_date + ")" +
          (o.product ? " · " + o.product.brand : "") }),
        el("div", { text: o.check_code.replace(/_/g, " ") + ": " + o.detail }),
        o.request_note ? el("div", { class: "hint", text: "Note from " + o.requested_by + ": " + o.request_note }) : el("span"),
        el("div", { class: "decide" }, [el("span", { text: "Asked by " + o.requested_by }), reason, grant, decline]),
      ]));
    });
  }

  async function loadFlags() {
    const box = $("flags");
    const result = await api("GET", "/api/flags/?open=true");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data.results;
    $("flags-count").textContent = "(" + rows.length + ")";
    if (!rows.length) empty(box, "No brand switch waiting.");
    rows.forEach((f) => {
      const select = el("select", { "aria-label": "Reason for flag " + f.id }, reasons.map((r) => el("option", { value: r.value, text: r.label })));
      const text = el("input", { placeholder: "In a few words (required for other)", "aria-label": "Reason text for flag " + f.id });
      const ack = el("button", { type: "button", class: "primary", text: "Acknowledge" });
      ack.addEventListener("click", async () => {
        const res = await api("POST", "/api/flags/" + f.id + "/acknowledge", { reason: select.value, reason_text: text.value });
        if (!res.ok) { message(res.data.detail, "red"); return; }
        message("Brand switch acknowledged for " + who(f.patient) + ".", "green");
        loadFlags();
      });
      const differences = (f.differences || []).map((d) => d.field.replace(/_/g, " ") + ": " + d.from + " → " + d.to).join("; ");
      box.appendChild(el("div", { class: "item", "data-flag": String(f.id) }, [
        el("div", { class: "what", text: who(f.patient) + " · " + f.from_product.brand + " → " + f.to_product.brand }),
        el("div", { text: f.advice }),
        differences ? el("div", { class: "hint", text: "Differs in " + differences }) : el("span"),
        el("div", { class: "decide" }, [select, text, ack]),
      ]));
    });
  }

  async function loadDoses() {
    const box = $("doses");
    const result = await api("GET", "/api/sessions/dose-discrepancies");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data;
    $("doses-count").textContent = "(" + rows.length + ")";
    if (!rows.length) empty(box, "No session differs from its order.");
    rows.forEach((row) => {
      const d = row.dose;
      const reason = el("input", { placeholder: "Why the dose differs", "aria-label": "Reason for session " + row.session });
      const complete = el("button", { type: "button", class: "primary", text: "Complete with this reason" });
      complete.addEventListener("click", async () => {
        const res = await api("POST", "/api/sessions/" + row.session + "/complete", { discrepancy_reason: reason.value });
        if (!res.ok) { message(res.data.detail, "red"); return; }
        message("Session " + row.session + " completed.", "green");
        loadDoses();
      });
      box.appendChild(el("div", { class: "item", "data-session": String(row.session) }, [
        el("div", { class: "what", text: who(row.patient) + " · session " + row.session + " (" + row.scheduled_date + ")" }),
        el("div", { text: d.given_grams + " g given of " + d.ordered_grams + " g ordered; " + d.returned_grams +
          " g returned unopened; tolerance " + d.tolerance_grams + " g." }),
        el("div", { class: "decide" }, [el("span"), reason, complete]),
      ]));
    });
  }

  async function loadLots() {
    const box = $("lots");
    const result = await api("GET", "/api/dispenses/?lot_out_of_use=true");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data.results;
    $("lots-count").textContent = "(" + rows.length + ")";
    if (!rows.length) empty(box, "None.");
    rows.forEach((d) => {
      const reason = el("input", { placeholder: "Why it was given all the same", "aria-label": "Reason for dispense " + d.id });
      const decide = el("button", { type: "button", class: "primary", text: "Record that it was given" });
      decide.addEventListener("click", async () => {
        const res = await api("POST", "/api/dispenses/" + d.id + "/lot-decision", { reason: reason.value });
        if (!res.ok) { message(res.data.detail, "red"); return; }
        message("Recorded for vial " + d.vial.serial + ".", "green");
        loadLots();
      });
      box.appendChild(el("div", { class: "item", "data-dispense": String(d.id) }, [
        el("div", { class: "what", text: d.vial.brand + " · lot " + d.vial.lot.lot_number + " · serial " + d.vial.serial +
          " · session " + d.session }),
        el("div", { text: "Lot " + d.vial.lot.lot_number + " is " + d.vial.lot.status + " since the vial was dispensed." }),
        el("div", { class: "decide" }, [el("span"), reason, decide]),
      ]));
    });
  }

  async function loadSuspects() {
    const box = $("suspects");
    const result = await api("GET", "/api/suspect-scans/?status=open");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data.results;
    $("suspects-count").textContent = "(" + rows.length + ")";
    if (!rows.length) empty(box, "None.");
    rows.forEach((r) => {
      const resolution = el("input", { placeholder: "What you found and did", "aria-label": "Resolution of report " + r.id });
      const resolve = el("button", { type: "button", class: "primary", text: "Resolve" });
      resolve.addEventListener("click", async () => {
        const res = await api("POST", "/api/suspect-scans/" + r.id + "/resolve", { resolution: resolution.value });
        if (!res.ok) { message(res.data.detail, "red"); return; }
        message("Report resolved.", "green");
        loadSuspects();
      });
      box.appendChild(el("div", { class: "item", "data-suspect": String(r.id) }, [
        el("div", { class: "what", text: r.vial.brand + " · GTIN " + r.vial.gtin + " · serial " + r.vial.serial }),
        el("div", { text: "On record: lot " + r.vial.lot.lot_number + ". Scanned by " + r.reported_by + ": lot " +
          (r.scanned_lot || "—") + (r.scanned_expiry ? ", expiry " + r.scanned_expiry : "") + "." }),
        el("div", { class: "decide" }, [el("span"), resolution, resolve]),
      ]));
    });
  }

  // Cold-chain excursions awaiting a decision, product by product.
  async function loadExcursions() {
    const box = $("excursions");
    const result = await api("GET", "/api/excursions/?status=open");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data.results;
    $("excursions-count").textContent = "(" + rows.length + ")";
    if (!rows.length) empty(box, "None.");
    for (const x of rows) {
      const detail = await api("GET", "/api/excursions/" + x.id + "/");
      if (!detail.ok) { message(detail.data.detail, "red"); continue; }
      const item = el("div", { class: "item", "data-excursion": String(x.id) }, [
        el("div", { class: "what", text: x.location.name + " · " + x.lowest_c + "–" + x.highest_c + " °C from " +
          x.started_at.replace("T", " ").slice(0, 16) + (x.ended_at ? " to " + x.ended_at.replace("T", " ").slice(0, 16) : " (still out of range)") }),
        el("div", { text: x.vials_pending + " of " + x.vials_reached + " vial(s) await a decision." }),
      ]);
      detail.data.products.filter((p) => p.pending > 0).forEach((p) => {
        const reason = el("input", { placeholder: "Your reason", "aria-label": "Reason for " + p.brand + " in excursion " + x.id });
        const release = el("button", { type: "button", class: "primary", text: "Release" });
        const waste = el("button", { type: "button", text: "Waste" });
        if (p.release_refusal) release.disabled = true;
        const decide = async (decision) => {
          const res = await api("POST", "/api/excursions/" + x.id + "/dispositions/",
            { product: p.product_id, decision, reason: reason.value });
          if (!res.ok) { message(res.data.detail, "red"); return; }
          message(p.brand + ": " + p.pending + " vial(s) " + (decision === "release" ? "released" : "wasted") + ".", "green");
          loadExcursions();
        };
        release.addEventListener("click", () => decide("release"));
        waste.addEventListener("click", () => decide("waste"));
        item.appendChild(el("div", { class: "hint", text: p.brand + ": " + p.pending + " held. " +
          (p.release_refusal || "Label allowance: " + p.room_temp_allowance_days + " days up to " + p.room_temp_max_c + " °C.") }));
        item.appendChild(el("div", { class: "decide" }, [el("span", { text: p.brand }), reason, release, waste]));
      });
      box.appendChild(item);
    }
  }


  // --- treatment authorisations: the discrepancy queue and those ending soon ---------------------
  async function loadAuthorisationDiscrepancies() {
    const box = $("authorisation-discrepancies");
    const result = await api("GET", "/api/authorisations/discrepancies");
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data.results;
    $("authorisation-discrepancies-count").textContent = "(" + total(result.data) + ")";
    if (!rows.length) empty(box, "None.");
    rows.forEach((r) => {
      const under = r.authorisation ? "under " + (r.authorisation.payer_reference || "#" + r.authorisation.id) : "no authorisation";
      const why = r.checks.length
        ? r.checks.map((c) => c.check.replace(/^authorisation_/, "").replace(/_/g, " ") + ": " + c.detail +
            (c.decided_by ? " (overridden by " + c.decided_by + ": " + c.decision_reason + ")" : "")).join(" ")
        : "The session had no authorisation.";
      const note = el("input", { placeholder: "How it was settled with the payer", maxlength: "200",
        "aria-label": "Reconciliation of dispense " + r.dispense });
      const settle = el("button", { type: "button", class: "primary", text: "Reconciled" });
      settle.addEventListener("click", async () => {
        const res = await api("POST", "/api/authorisations/discrepancies/" + r.dispense + "/reconcile", { note: note.value });
        if (!res.ok) { message(res.data.detail, "red"); return; }
        message("Dispense " + r.dispense + " reconciled.", "green");
        loadAuthorisationDiscrepancies();
      });
      box.appendChild(el("div", { class: "item", "data-dispense": String(r.dispense) }, [
        el("div", { class: "what", text: who(r.patient) + " · session " + r.session + " (" + r.scheduled_date + ") · " +
          r.brand + " " + r.grams + " g · lot " + r.lot_number + " · " + under }),
        el("div", { text: why }),
        el("div", { class: "decide" }, [note, settle]),
      ]));
    });
  }

  async function loadAuthorisationsExpiring() {
    const box = $("authorisations-expiring");
    const result = await api("GET", "/api/authorisations/expiring?days=" + encodeURIComponent(box.dataset.days));
    if (!result.ok) { message(result.data.detail, "red"); return; }
    box.innerHTML = "";
    const rows = result.data.results;
    $("authorisations-expiring-count").textContent = "(" + total(result.data) + ")";
    if (!rows.length) empty(box, "None.");
    rows.forEach((a) => {
      const brand = a.product ? a.product.brand : "any " + a.route + " brand";
      box.appendChild(el("div", { class: "item", "data-authorisation": String(a.id) }, [
        el("div", { class: "what", text: who(a.patient) + " · " + (a.payer_reference || "#" + a.id) + " · " + brand }),
        el("div", { text: "Ends " + a.valid_until + " (" + a.days_left + " days); " + a.doses_remaining + " of " + a.doses +
          " doses left. Approved by " + a.approver + "; prescriber " + a.prescriber + "." }),
      ]));
    });
  }

  loadOverrides();
  loadExcursions();
  loadAuthorisationDiscrepancies();
  loadAuthorisationsExpiring();
  loadLots();
  loadSuspects();
  loadFlags();
  loadDoses();
})();
