// Recall look-up: where is every vial of this lot, and who received one? All data from the API.
(function () {
  "use strict";
  const cfg = window.RECALL_PAGE || {};
  const $ = (id) => document.getElementById(id);
  const input = $("lot-input");

  const api = window.IvigApi.call;
  const message = window.IvigApi.message;
  const schemesNode = $("recall-schemes");
  const schemes = schemesNode ? JSON.parse(schemesNode.textContent) : [];

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (k === "class") node.className = v; else node.setAttribute(k, v); });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function row(cells) {
    return el("tr", {}, cells.map((c) => el("td", {}, [c === null || c === undefined ? "—" : String(c)])));
  }

  function table(headers, rows) {
    const thead = el("thead", {}, [el("tr", {}, headers.map((h) => el("th", {}, [h])))]);
    const tbody = el("tbody", {}, rows.map(row));
    return el("table", { class: "grid" }, [thead, tbody]);
  }

  // "Did you mean": each close lot number the server suggests is a button that looks it up.
  function showSuggestions(suggestions) {
    const list = $("suggestion-list");
    list.innerHTML = "";
    suggestions.forEach((number) => {
      const button = el("button", { type: "button", class: "suggestion" }, [number]);
      button.addEventListener("click", () => { input.value = number; lookup(number); });
      list.appendChild(button);
    });
    $("suggestions").hidden = !suggestions.length;
  }

  async function lookup(value, keepMessage) {
    value = value.trim();
    if (!value) return;
    const params = new URLSearchParams();
    // The server tells a scan from a lot number.
    params.set("q", value);
    if ($("prefix-match").checked) params.set("match", "prefix");
    const result = await api("GET", "/api/recalls/lookup?" + params.toString());
    const box = $("lookup-result");
    box.innerHTML = "";
    showSuggestions([]);
    if (!result.ok) {
      message(result.data.detail || "Not found.", "red");
      showSuggestions(result.data.suggestions || []);
      return;
    }
    if (!keepMessage) message("", "");
    if (result.data.truncated) message("More lots match than are shown: type more of the lot number.", "amber");
    patientRows.clear();
    result.data.results.forEach((lot) => box.appendChild(renderLot(lot)));
    morePatients(result.data);
  }

  // A lot given to thousands of patients comes a page of patients at a time (counts and stock are
  // whole on every page): each page's lines are added to its lot's table, until the last.
  const patientRows = new Map();

  function patientLines(r) {
    const rows = [];
    r.patients.forEach((p) => p.dispenses.forEach((d) => rows.push([
      p.patient.name, p.patient.mrn, d.session.scheduled_date, "session " + d.session.id, d.vial.serial, d.status.replace(/_/g, " "), d.dispensed_by, d.dispensed_at.slice(0, 16).replace("T", " ")])));
    return rows;
  }

  function morePatients(data) {
    const shown = new Set();
    patientRows.forEach((entry) => entry.patients.forEach((id) => shown.add(id)));
    if (!data.next || !patientRows.size) return;
    const hint = el("p", { class: "hint more-patients" }, [
      shown.size + " of " + data.patients_count + " patients shown, by name. "]);
    const button = el("button", { type: "button", class: "button" }, ["Show more patients"]);
    hint.appendChild(button);
    // Right under the (last) table of patients, where the eye is when the list runs out.
    Array.from(patientRows.values()).pop().grid.after(hint);
    button.addEventListener("click", async () => {
      button.disabled = true;
      const next = new URL(data.next, window.location.href);
      const result = await api("GET", next.pathname + next.search);
      if (!result.ok) { button.disabled = false; message(result.data.detail || "Could not load more patients.", "red"); return; }
      hint.remove();
      result.data.results.forEach((r) => {
        const entry = patientRows.get(r.lot.id);
        if (!entry) return;
        patientLines(r).forEach((cells) => entry.tbody.appendChild(row(cells)));
        r.patients.forEach((p) => entry.patients.add(p.patient.id));
      });
      morePatients(result.data);
    });
  }

  function openedMessage(recall, lotNumber) {
    return "Recall " + recall.reference + " opened (" + recall.class_text + "): lot " + lotNumber +
      " recalled, on-hand vials quarantined, " + recall.progress.total + " patient(s) to notify" +
      (recall.action_due ? ", action due " + when(recall.action_due) : "") + ".";
  }

  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : "—"; }

  // One open recall on a lot: its class, deadline, progress, and each patient's notification,
  // overdue ones marked (the server says which are overdue).
  async function renderRecall(rec, into) {
    const [detail, tasks] = await Promise.all([
      api("GET", "/api/recalls/" + rec.id), api("GET", "/api/recalls/" + rec.id + "/notifications")]);
    if (!detail.ok) return;
    const d = detail.data, p = d.progress;
    const line = el("p", { class: "recall-line" }, [
      "Recall " + d.reference + " (" + d.status + ") · " + d.class_text + " · action due " + (d.action_due ? when(d.action_due) : "— (no deadline)") +
      " · " + p.total + " patient(s) to notify, " + p.notified + " notified"]);
    if (p.overdue) line.appendChild(el("span", { class: "overdue" }, [" · " + p.overdue + " overdue"]));
    into.appendChild(line);
    if (tasks.ok && tasks.data.results.length) {
      const rows = tasks.data.results.map((t) => [t.patient.name, t.patient.mrn, t.status.replace(/_/g, " "), when(t.due), t.overdue ? "OVERDUE" : ""]);
      const grid = table(["Patient", "MRN", "Notification", "Due", ""], rows);
      grid.querySelectorAll("tbody tr").forEach((tr, i) => { if (tasks.data.results[i].overdue) tr.className = "red"; });
      into.appendChild(grid);
      if (tasks.data.next) into.appendChild(el("p", { class: "hint" }, ["More patients: see the Excel lookback."]));
    }
  }

  function renderLot(r) {
    const lot = r.lot, c = r.counts;
    const block = el("section", { class: "card lot-block" + (lot.status === "recalled" ? " red" : "") });
    block.appendChild(el("h2", {}, [r.product.brand + " · lot " + lot.lot_number]));
    block.appendChild(el("p", { class: "sub" }, ["Expiry " + lot.expiry_date + " · status " + lot.status +
      (r.recalls.length ? " · recalls: " + r.recalls.map((x) => x.reference + " (" + x.status + ")").join(", ") : "")]));
    block.appendChild(el("p", { class: "counts" }, Object.keys(c).map((k) => el("span", {}, [k.replace(/_/g, " ") + ": " + c[k]]))));

    block.appendChild(el("h3", {}, ["On hand, by location"]));
    if (r.on_hand.length) {
      block.appendChild(table(["Location", "Vials", "Serials"], r.on_hand.map((g) => [
        g.location ? g.location.name + " (" + g.location.code + ")" : "no location", g.count, g.vials.map((v) => v.serial).join(", ")])));
    } else block.appendChild(el("p", {}, ["None on a shelf."]));

    block.appendChild(el("h3", {}, ["Patients who received it"]));
    if (c.patients) {
      const grid = table(["Patient", "MRN", "Date", "Session", "Serial", "Outcome", "Dispensed by", "At"], patientLines(r));
      patientRows.set(lot.id, { grid, tbody: grid.querySelector("tbody"), patients: new Set(r.patients.map((p) => p.patient.id)) });
      block.appendChild(grid);
    } else block.appendChild(el("p", {}, ["No patient received a vial of this lot."]));

    if (r.wasted.length || r.returned.length) {
      block.appendChild(el("h3", {}, ["Wasted or returned to supplier"]));
      block.appendChild(table(["Serial", "Status"], r.wasted.concat(r.returned).map((v) => [v.serial, v.status])));
    }

    // Vials of the lot that cold-chain excursions reached, and what the pharmacist decided.
    if ((r.excursions || []).length) {
      block.appendChild(el("h3", {}, ["Cold-chain excursions"]));
      block.appendChild(table(["Serial", "Location", "From", "To", "Highest °C", "Decision", "Vial now"], r.excursions.map((x) => [
        x.serial, x.location, when(x.started_at), x.ended_at ? when(x.ended_at) : "still out of range", x.highest_c,
        x.outcome.replace(/_/g, " "), x.vial_status.replace(/_/g, " ")])));
    }

    if (r.recalls.length) {
      block.appendChild(el("h3", {}, ["Recalls and notifications"]));
      const recalls = el("div", { class: "recalls" });
      block.appendChild(recalls);
      r.recalls.forEach((rec) => renderRecall(rec, recalls));
    }

    const actions = el("div", { class: "actions" });
    r.recalls.forEach((rec) => actions.appendChild(el("a", { href: "/api/recalls/" + rec.id + "/export.xlsx", class: "button", download: "" },
      ["Download Excel lookback (" + rec.reference + ")"])));
    block.appendChild(actions);
    const open = r.recalls.some((x) => x.status === "open");
    if (cfg.canManage && !open && lot.status !== "recalled") block.appendChild(recallForm(r));
    return block;
  }

  function fillClasses(form) {
    const scheme = schemes.find((s) => s.value === form.elements.scheme.value) || { classes: [] };
    const select = form.elements.recall_class;
    select.innerHTML = "";
    scheme.classes.forEach((c) => select.appendChild(el("option", { value: c.value }, [c.text])));
  }

  function recallForm(r) {
    const lot = r.lot, c = r.counts;
    const form = document.getElementById("recall-form-template").content.firstElementChild.cloneNode(true);
    const confirmStep = form.querySelector(".confirm-step");
    fillClasses(form);
    form.elements.scheme.addEventListener("change", () => fillClasses(form));
    // Nothing is recalled on the first press: the form says what will happen, and waits for a confirmation.
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = form.elements.recall_class.selectedOptions[0];
      form.querySelector(".confirm-text").textContent = "Recall " + r.product.brand + " lot " + lot.lot_number +
        " (" + (chosen ? chosen.textContent : "") + ")? " + c.on_hand + " vial(s) on hand will be quarantined and " +
        c.patients + " patient(s) who received it get a notification task. This cannot be undone here.";
      confirmStep.hidden = false;
      form.querySelector(".confirm-recall").focus();
    });
    form.querySelector(".cancel-recall").addEventListener("click", () => { confirmStep.hidden = true; });
    form.querySelector(".confirm-recall").addEventListener("click", async (event) => {
      event.target.disabled = true;
      const data = Object.fromEntries(new FormData(form).entries());
      data.lots = [lot.id];
      const result = await api("POST", "/api/recalls/", data);
      event.target.disabled = false;
      if (!result.ok) { confirmStep.hidden = true; message(result.data.detail || "Refused.", "red"); return; }
      // The address now names the lot and the recall, so a refresh shows both again, from the server.
      history.replaceState(null, "", "?" + new URLSearchParams({ lot: lot.lot_number, recall: result.data.id }).toString());
      message(openedMessage(result.data, lot.lot_number), "green");
      lookup(lot.lot_number, true);
    });
    return form;
  }

  async function showOpenedRecall(id) {
    const result = await api("GET", "/api/recalls/" + id);
    if (!result.ok) return;
    const lots = result.data.lots.map((l) => l.lot_number).join(", ");
    message(openedMessage(result.data, lots), "green");
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); lookup(input.value); }
  });
  input.focus();
  if (cfg.recall) showOpenedRecall(cfg.recall);
  if (input.value) lookup(input.value, Boolean(cfg.recall));
})();
