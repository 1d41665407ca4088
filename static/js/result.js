// The result page: the map (Leaflet from our own static files) and facts that update the valuation.
(function () {
  "use strict";
  var el = document.getElementById("map");
  var data = document.getElementById("map-layers");
  if (el && data && window.L) {
    var layers = JSON.parse(data.textContent);
    var map = L.map(el, {scrollWheelZoom: false});
    var tiles = el.getAttribute("data-tile-url");
    if (tiles) {
      L.tileLayer(tiles, {maxZoom: 19, attribution: el.getAttribute("data-tile-attribution") || ""}).addTo(map);
    } else {
      el.classList.add("no-tiles");
    }
    var styles = {
      parcel: {color: "#0b5d7a", weight: 2, fillOpacity: 0.08},
      building: {color: "#7a3b0b", weight: 1, fillColor: "#c8834a", fillOpacity: 0.5}
    };
    var shapes = L.geoJSON(layers, {
      style: function (f) { return styles[f.properties.kind] || {}; },
      pointToLayer: function (f, latlng) {
        if (f.properties.kind === "sale") {
          return L.marker(latlng, {
            icon: L.divIcon({className: "sale-marker", html: String(f.properties.rank), iconSize: [22, 22]}),
            title: f.properties.rank + ". " + (f.properties.label || ""),
            keyboard: true
          });
        }
        return L.circleMarker(latlng, {radius: 8, color: "#b00020", weight: 3, fillOpacity: 0.9});
      },
      onEachFeature: function (f, layer) { if (f.properties.label) layer.bindTooltip(String(f.properties.label)); }
    }).addTo(map);
    var bounds = shapes.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.15)); else map.setView([50.85, 4.35], 8);
  }
  // The report: the print stylesheet does the rest (no inline handler: the CSP forbids them).
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  // Facts: a change re-values the property (a new valuation, stored with the corrected facts).
  var form = document.getElementById("revise-form");
  if (form) {
    var timer = null;
    form.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { form.requestSubmit ? form.requestSubmit() : form.submit(); }, 700);
    });
  }
})();
