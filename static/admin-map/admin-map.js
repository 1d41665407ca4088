// Admin geometry maps (opendata/admin_map.py): the GeoJSON in data-geojson on our vendored Leaflet.
(function () {
  "use strict";
  function draw(el) {
    if (!window.L || !el.getAttribute("data-geojson")) { return; }
    var map = L.map(el, {scrollWheelZoom: false});
    var tiles = el.getAttribute("data-tile-url");
    if (tiles) {
      L.tileLayer(tiles, {maxZoom: 19, attribution: el.getAttribute("data-tile-attribution") || ""}).addTo(map);
    } else {
      el.classList.add("no-tiles");
    }
    var shape = L.geoJSON(JSON.parse(el.getAttribute("data-geojson")), {
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, {radius: 7}); }
    }).addTo(map);
    map.fitBounds(shape.getBounds(), {maxZoom: 18, padding: [20, 20]});
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".admin-map"), draw);
  });
})();
