// The one way the pages talk to the JSON API: session cookie, CSRF header, and an answer that is
// always {ok, status, data} with data.detail in words, even when the network or server fails.
window.IvigApi = (function () {
  "use strict";

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function call(method, url, body) {
    const options = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (e) {
      return { ok: false, status: 0, data: { code: "network", detail: "The server could not be reached. Check the connection and try again." } };
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!data) {
      data = { code: "server_error", detail: "The server could not answer (HTTP " + response.status + "). Nothing was changed; try again or call the pharmacist." };
    }
    return { ok: response.ok, status: response.status, data };
  }

  function message(text, colour) {
    const box = document.getElementById("message");
    box.textContent = text;
    box.className = "msg " + (colour || "");
    box.hidden = !text;
  }

  return { call, message };
})();
