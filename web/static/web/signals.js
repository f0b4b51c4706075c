// The lot reaction signal on the recall page: lots whose reactions per 1,000 infusions stand out
// from the rest of their brand, with the patients and reactions behind them (GET /api/signals/lots).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function per1000(value) { return Math.round(value) + " per 1,000"; }

  async function load() {
    const box = $("signals");
    const result = await window.IvigApi.call("GET", "/api/signals/lots");
    box.innerHTML = "";
    if (!result.ok) { box.appendChild(el("p", { class: "hint", text: result.data.detail })); return; }
    $("signals-count").textContent = "(" + result.data.length + ")";
    if (!result.data.length) { box.appendChild(el("p", { class: "hint", text: "No lot stands out." })); return; }
    result.data.forEach((s) => {
      const reactions = s.reaction_list.map((r) => el("li", { text: r.onset_at.slice(0, 16).replace("T", " ") + " · " +
        r.patient.name + " (MRN " + r.patient.mrn + ") · " + r.type.replace(/_/g, " ") + (r.type_other ? ": " + r.type_other : "") +
        ", " + r.severity + " · session " + r.session }));
      box.appendChild(el("div", { class: "lot-block red signal", "data-lot": s.lot.lot_number }, [
        el("div", { class: "recall-line", text: s.product.brand + " lot " + s.lot.lot_number + ": " + s.reactions +
          " reaction(s) in " + s.infusions + " infusion(s), " + per1000(s.rate_per_1000) + " against " +
          per1000(s.rest_rate_per_1000) + " for the brand's other lots (p = " + s.p_value.toPrecision(2) + ")" }),
        el("div", { class: "hint", text: s.patients.length + " patient(s): " + s.patients.map((p) => p.name).join(", ") }),
        el("ul", { class: "history" }, reactions),
        el("a", { class: "button", href: "/recall/?lot=" + encodeURIComponent(s.lot.lot_number), text: "Look up lot " + s.lot.lot_number }),
      ]));
    });
  }

  load();
})();
