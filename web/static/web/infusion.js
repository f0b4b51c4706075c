// The nurse's page: today's sessions on the left, the chosen one on the right with what can be
// done now (start, step the rate, pause or resume, record a reaction, finish or stop with each
// vial's fate). Every action is one API call; the API decides and the page shows its answer.
(function () {
  "use strict";
  const api = window.IvigApi.call;
  const $ = (id) => document.getElementById(id);
  const choices = JSON.parse($("infusion-choices").textContent);
  const canRecord = window.INFUSION_PAGE.canRecord;
  let rows = [];
  let chosen = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null) return;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function message(text, colour) { window.IvigApi.message(text, colour); }

  function clock(iso) { return iso ? iso.slice(11, 16) : ""; }

  function rateText(mlh, mlkgh) {
    if (mlh === null || mlh === undefined) return "";
    return Number(mlh) + " mL/h" + (mlkgh !== null && mlkgh !== undefined ? " (" + Number(mlkgh) + " mL/kg/h)" : "");
  }

  // A time typed on the tablet is today's, in the site's time zone (the server reads it so).
  function at(input) { return input && input.value ? choices.today + "T" + input.value : undefined; }

  function rateFields(prefix) {
    const value = el("input", { id: prefix + "-rate", type: "number", min: "0", step: "0.1", inputmode: "decimal",
      "aria-label": "Rate", placeholder: "Rate" });
    const unit = el("select", { id: prefix + "-unit", "aria-label": "Unit" }, [
      el("option", { value: "h", text: "mL/h" }), el("option", { value: "kg", text: "mL/kg/h" })]);
    const time = el("input", { id: prefix + "-time", type: "time", "aria-label": "Time (now if empty)" });
    const body = () => {
      const b = { at: at(time) };
      b[unit.value === "kg" ? "rate_ml_per_kg_per_h" : "rate_ml_per_h"] = value.value;
      return b;
    };
    return { nodes: [value, unit, time], body };
  }

  function button(id, text, cls, onClick) {
    const b = el("button", { id, type: "button", class: "tablet " + (cls || ""), text });
    b.addEventListener("click", onClick);
    return b;
  }

  async function act(method, url, body, done) {
    const result = await api(method, url, body);
    if (!result.ok) { message(result.data.detail, "red"); return; }
    message(done, "green");
    await loadWorklist();
  }

  async function loadWorklist() {
    const result = await api("GET", "/api/administrations/worklist");
    const box = $("worklist");
    box.innerHTML = "";
    if (!result.ok) { message(result.data.detail, "red"); return; }
    rows = result.data;
    if (!rows.length) box.appendChild(el("p", { class: "hint", text: "No infusion to give today." }));
    rows.forEach((row) => {
      const state = row.administration ? "infusion recorded" : row.dispenses.length + " vial(s) dispensed";
      const b = el("button", { type: "button", "data-session": String(row.session),
        class: row.session === chosen ? "chosen" : "" }, [
        el("span", { text: row.patient.name }), el("span", { class: "state", text: "MRN " + row.patient.mrn + " · " + state })]);
      b.addEventListener("click", () => { chosen = row.session; loadWorklist(); });
      box.appendChild(b);
    });
    if (chosen !== null) await showChosen();
  }

  async function showChosen() {
    const row = rows.find((r) => r.session === chosen);
    const panel = $("panel");
    panel.innerHTML = "";
    if (!row) { chosen = null; return; }
    let adm = null;
    if (row.administration) {
      const result = await api("GET", "/api/administrations/" + row.administration);
      if (!result.ok) { message(result.data.detail, "red"); return; }
      adm = result.data;
    }
    const p = row.patient;
    panel.appendChild(el("div", { class: "who-box", id: "who" }, [
      el("span", { text: p.name }),
      el("div", { class: "sub", text: "MRN " + p.mrn + " · born " + p.date_of_birth +
        (p.weight_kg ? " · " + Number(p.weight_kg) + " kg" : " · weight not recorded") + " · " + row.route + " · " +
        Number(row.ordered_grams) + " g ordered" }),
    ]));
    if (p.allergy_notes) panel.appendChild(el("div", { class: "warning amber", text: p.allergy_notes }));
    row.open_flags.forEach((f) => panel.appendChild(el("div", { class: "warning amber",
      text: "Brand switch " + f + ": start the first infusion of the new brand at the initial (slowest) rate." })));
    panel.appendChild(vialTable(row, adm));
    if (!adm) { if (canRecord) panel.appendChild(startForm(row)); return; }
    panel.appendChild(rateNow(adm));
    if (canRecord && (adm.status === "running" || adm.status === "paused")) {
      panel.appendChild(adm.status === "running" ? stepForm(adm) : resumeForm(adm));
      panel.appendChild(reactionForm(adm));
      panel.appendChild(finishForm(row, adm));
    } else if (canRecord) {
      panel.appendChild(reactionForm(adm));
    }
    panel.appendChild(timeline(adm));
  }

  function vialTable(row, adm) {
    const fates = {};
    (adm ? adm.fates : []).forEach((f) => { fates[f.dispense] = f; });
    return el("table", { class: "grid", id: "vials" }, [
      el("tr", {}, ["Brand", "Lot", "Serial", "Grams", "Now"].map((h) => el("th", { text: h }))),
      ...row.dispenses.map((d) => el("tr", {}, [
        el("td", { text: d.product.brand }), el("td", { text: (d.vial.lot ? d.vial.lot.lot_number : "") }), el("td", { text: d.vial.serial }),
        el("td", { text: String(Number(d.grams)) }),
        el("td", { text: fates[d.id] ? fates[d.id].fate.replace("_", " ") : d.status.replace(/_/g, " ") }),
      ])),
    ]);
  }

  function startForm(row) {
    const rate = rateFields("start");
    const premed = el("textarea", { id: "premedication", rows: "2", placeholder: "Premedication as given (e.g. paracetamol 1 g PO 09:40)",
      "aria-label": "Premedication" });
    return el("div", { class: "act" }, [
      el("h3", { text: "Start the infusion" }), premed,
      el("div", { class: "line" }, [...rate.nodes, button("start-button", "Start infusion", "primary", () => {
        act("POST", "/api/administrations/", { session: row.session, premedication: premed.value, ...rate.body() },
          "Infusion started for " + row.patient.name + ".");
      })]),
    ]);
  }

  function rateNow(adm) {
    const text = adm.status === "running" ? rateText(adm.rate.ml_per_h, adm.rate.ml_per_kg_per_h)
      : adm.status === "paused" ? "Paused" : (adm.status === "finished" ? "Finished " : "Stopped early ") + clock(adm.ended_at);
    return el("div", { class: "rate-now " + (adm.status === "running" ? "" : adm.status === "paused" ? "paused" : "ended"),
      id: "rate-now", text });
  }

  function stepForm(adm) {
    const rate = rateFields("step");
    const reason = el("input", { id: "pause-reason", placeholder: "Why pause (required)", "aria-label": "Reason to pause" });
    const time = el("input", { id: "pause-time", type: "time", "aria-label": "Time of the pause (now if empty)" });
    return el("div", {}, [
      el("div", { class: "act" }, [el("h3", { text: "Change the rate" }), el("div", { class: "line" }, [
        ...rate.nodes, button("step-button", "Set rate", "primary", () =>
          act("POST", "/api/administrations/" + adm.id + "/rate", rate.body(), "Rate changed."))])]),
      el("div", { class: "act" }, [el("h3", { text: "Pause" }), el("div", { class: "line" }, [
        reason, time, button("pause-button", "Pause", "amber", () =>
          act("POST", "/api/administrations/" + adm.id + "/pause", { reason: reason.value, at: at(time) }, "Infusion paused."))])]),
    ]);
  }

  function resumeForm(adm) {
    const rate = rateFields("resume");
    return el("div", { class: "act" }, [el("h3", { text: "Resume" }), el("div", { class: "line" }, [
      ...rate.nodes, button("resume-button", "Resume at this rate", "primary", () =>
        act("POST", "/api/administrations/" + adm.id + "/resume", rate.body(), "Infusion resumed."))])]);
  }

  function reactionForm(adm) {
    const type = el("select", { id: "reaction-type", "aria-label": "Reaction" },
      choices.reaction_types.map((c) => el("option", { value: c.value, text: c.label })));
    const other = el("input", { id: "reaction-other", placeholder: "Name it when other", "aria-label": "Other reaction" });
    const severity = el("select", { id: "reaction-severity", "aria-label": "Severity" },
      choices.severities.map((c) => el("option", { value: c.value, text: c.label })));
    const time = el("input", { id: "reaction-time", type: "time", "aria-label": "Onset (now if empty)" });
    const notes = el("input", { id: "reaction-notes", placeholder: "What was seen and done", "aria-label": "Notes" });
    return el("div", { class: "act" }, [el("h3", { text: "Record a reaction" }), el("div", { class: "line" }, [
      type, other, severity, time, notes, button("reaction-button", "Record reaction", "danger", () => {
        const onset = at(time) || new Date().toISOString();
        act("POST", "/api/administrations/" + adm.id + "/reactions", {
          type: type.value, type_other: other.value, severity: severity.value, onset_at: onset, notes: notes.value,
        }, "Reaction recorded. Pause or stop the infusion if it calls for it.");
      })])]);
  }

  function finishForm(row, adm) {
    const lines = row.dispenses.filter((d) => d.status !== "returned_to_stock").map((d) => {
      const fate = el("select", { "data-dispense": String(d.id), "aria-label": "Fate of vial " + d.vial.serial },
        choices.fates.map((c) => el("option", { value: c.value, text: c.label })));
      const volume = el("input", { "data-volume": String(d.id), type: "number", min: "0", step: "0.1",
        placeholder: "mL left", "aria-label": "Volume left in vial " + d.vial.serial, hidden: "" });
      fate.addEventListener("change", () => { volume.hidden = fate.value !== "partial"; });
      return { d, fate, volume, node: el("div", { class: "fate-row" }, [
        el("span", { text: d.product.brand + " · lot " + ((d.vial.lot ? d.vial.lot.lot_number : "")) + " · " + d.vial.serial }), fate, volume]) };
    });
    const fates = () => lines.map((l) => ({ dispense: l.d.id, fate: l.fate.value,
      volume_left_ml: l.fate.value === "partial" ? l.volume.value || null : null }));
    const time = el("input", { id: "finish-time", type: "time", "aria-label": "Time it ended (now if empty)" });
    const reason = el("input", { id: "stop-reason", placeholder: "Why stop early (required to stop)", "aria-label": "Reason to stop" });
    return el("div", { class: "act" }, [
      el("h3", { text: "Finish: what became of each vial" }), ...lines.map((l) => l.node),
      el("div", { class: "line" }, [time,
        button("finish-button", "Finish infusion", "primary", () =>
          act("POST", "/api/administrations/" + adm.id + "/finish", { fates: fates(), at: at(time) }, "Infusion finished.")),
        reason,
        button("stop-button", "Stop early", "danger", () =>
          act("POST", "/api/administrations/" + adm.id + "/stop", { fates: fates(), at: at(time), reason: reason.value },
            "Infusion stopped."))]),
    ]);
  }

  function timeline(adm) {
    const items = adm.steps.map((s) => ({ at: s.at, node: el("li", { text: clock(s.at) + " " + s.kind + " " +
      rateText(s.rate_ml_per_h, s.rate_ml_per_kg_per_h) + (s.reason ? " · " + s.reason : "") + " · " + s.recorded_by }) }));
    adm.reactions.forEach((r) => items.push({ at: r.onset_at, node: el("li", { class: "reaction", text: clock(r.onset_at) +
      " reaction: " + r.type.replace(/_/g, " ") + (r.type_other ? " (" + r.type_other + ")" : "") + ", " + r.severity +
      (r.rate_at_onset_ml_per_h !== null ? " at " + Number(r.rate_at_onset_ml_per_h) + " mL/h" : "") + " · " + r.recorded_by }) }));
    items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    const premed = adm.premedication ? [el("p", { text: "Premedication: " + adm.premedication })] : [];
    return el("div", { class: "act" }, [el("h3", { text: "Record" }), ...premed,
      el("ol", { class: "timeline", id: "timeline" }, items.map((i) => i.node))]);
  }

  $("refresh").addEventListener("click", loadWorklist);
  loadWorklist();
})();
