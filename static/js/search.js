// The search box: suggestions as the notary types (addresses, streets, CaPaKeys), keyboard first.
(function () {
  "use strict";
  var input = document.getElementById("id_q");
  if (!input) return;
  var form = document.getElementById("valuate-form");
  var list = document.getElementById("suggestions");
  var status = document.getElementById("suggestions-status");
  var addressId = document.getElementById("id_address_id");
  var capakey = document.getElementById("id_capakey");
  var url = input.getAttribute("data-suggest-url");
  var items = [], active = -1, timer = null, asked = 0;

  function close() {
    list.hidden = true; input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant"); active = -1;
  }
  function show(results) {
    items = results; list.innerHTML = ""; active = -1;
    results.forEach(function (s, i) {
      var li = document.createElement("li");
      li.id = "suggestion-" + i; li.setAttribute("role", "option"); li.className = "kind-" + s.kind;
      li.textContent = s.label;
      if (s.note) { var note = document.createElement("span"); note.className = "note"; note.textContent = " · " + s.note; li.appendChild(note); }
      li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(i); });
      list.appendChild(li);
    });
    list.hidden = results.length === 0;
    input.setAttribute("aria-expanded", results.length ? "true" : "false");
    status.textContent = results.length ? results.length + " ↓" : "";
  }
  function highlight(i) {
    var options = list.querySelectorAll("[role=option]");
    options.forEach(function (o, k) { o.setAttribute("aria-selected", k === i ? "true" : "false"); });
    active = i;
    if (i >= 0) { input.setAttribute("aria-activedescendant", options[i].id); options[i].scrollIntoView({block: "nearest"}); }
  }
  function pick(i) {
    var s = items[i]; if (!s) return;
    if (s.kind === "street") { input.value = s.fill; close(); input.focus(); ask(); return; }
    input.value = s.label; addressId.value = s.address_id || ""; capakey.value = s.capakey || "";
    close(); form.submit();
  }
  function ask() {
    var q = input.value.trim(), ticket = ++asked;
    if (q.length < 2) { close(); return; }
    fetch(url + "?q=" + encodeURIComponent(q), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : {results: []}; })
      .then(function (data) { if (ticket === asked) show(data.results || []); })
      .catch(function () { if (ticket === asked) close(); });
  }
  input.addEventListener("input", function () {
    addressId.value = ""; capakey.value = "";
    clearTimeout(timer); timer = setTimeout(ask, 120);
  });
  input.addEventListener("keydown", function (e) {
    if (list.hidden) return;
    var n = items.length;
    if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % n); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight((active - 1 + n) % n); }
    else if (e.key === "Enter" && active >= 0) { e.preventDefault(); pick(active); }
    else if (e.key === "Escape") { close(); }
  });
  input.addEventListener("blur", function () { setTimeout(close, 150); });
  document.querySelectorAll("[data-fill]").forEach(function (b) {
    b.addEventListener("click", function () { input.value = b.getAttribute("data-fill"); input.focus(); ask(); });
  });
})();
