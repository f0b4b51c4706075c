// Recall look-up: where is every vial of this lot, and who received one? All data from the API.
(function () {
  "use strict";
  const cfg = window.RECALL_PAGE || {};
  const $ = (id) => document.getElementById(id);
  const input = $("lot-input");

  const api = window.IvigApi.call;
  const message = window.IvigApi.message;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (k === "class") node.className = v; else node.setAttribute(k, v); });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function table(headers, rows) {
    const thead = el("thead", {}, [el("tr", {}, headers.map((h) => el("th", {}, [h])))]);
    const tbody = el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, [c === null || c === undefined ? "—" : String(c)])))));
    return el("table", { class: "grid" }, [thead, tbody]);
  }

  // keepMessage: the refresh after opening a recall keeps its confirmation on screen.
  async function lookup(value, { keepMessage = false } = {}) {
    value = value.trim();
    if (!value) return;
    const params = new URLSearchParams();
    // The server tells a scan from a lot number.
    params.set("q", value);
    if ($("prefix-match").checked) params.set("match", "prefix");
    const result = await api("GET", "/api/recalls/lookup?" + params.toString());
    const box = $("lookup-result");
    box.innerHTML = "";
    if (!result.ok) {
      const suggestions = result.data.suggestions || [];
      message((result.data.detail || "Not found.") + (suggestions.length ? " Did you mean: " + suggestions.join(", ") + "?" : ""), "red");
      return;
    }
    if (!keepMessage) message("", "");
    if (result.data.truncated) message("More lots match than are shown: type more of the lot number.", "amber");
    result.data.results.forEach((lot) => box.appendChild(renderLot(lot)));
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
    if (r.patients.length) {
      const rows = [];
      r.patients.forEach((p) => p.dispenses.forEach((d) => rows.push([
        p.patient.name, p.patient.mrn, d.session.scheduled_date, "session " + d.session.id, d.vial.serial, d.status.replace(/_/g, " "), d.dispensed_by, d.dispensed_at.slice(0, 16).replace("T", " ")])));
      block.appendChild(table(["Patient", "MRN", "Date", "Session", "Serial", "Outcome", "Dispensed by", "At"], rows));
    } else block.appendChild(el("p", {}, ["No patient received a vial of this lot."]));

    if (r.wasted.length || r.returned.length) {
      block.appendChild(el("h3", {}, ["Wasted or returned to supplier"]));
      block.appendChild(table(["Serial", "Status"], r.wasted.concat(r.returned).map((v) => [v.serial, v.status])));
    }

    const actions = el("div", { class: "actions" });
    r.recalls.forEach((rec) => actions.appendChild(el("a", { href: "/api/recalls/" + rec.id + "/export.xlsx", class: "button", download: "" },
      ["Download Excel lookback (" + rec.reference + ")"])));
    block.appendChild(actions);
    const open = r.recalls.some((x) => x.status === "open");
    if (cfg.canManage && !open && lot.status !== "recalled") block.appendChild(recallForm(lot));
    return block;
  }

  function recallForm(lot) {
    const form = document.getElementById("recall-form-template").content.firstElementChild.cloneNode(true);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      data.lots = [lot.id];
      const result = await api("POST", "/api/recalls/", data);
      if (!result.ok) { message(result.data.detail || "Refused.", "red"); return; }
      message("Recall " + result.data.reference + " opened: lot " + lot.lot_number + " recalled, on-hand vials quarantined, " +
        result.data.progress.total + " patient(s) to notify.", "green");
      lookup(lot.lot_number, { keepMessage: true });
    });
    return form;
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); lookup(input.value); }
  });
  input.focus();
  if (input.value) lookup(input.value);
})();
