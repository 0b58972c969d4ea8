// The console's only script: draws the charts from their data-chart attributes and keeps
// incident countdowns ticking. Every chart also has a table beside it; without this file
// the pages still work.
(function () {
  "use strict";
  var palette = ["#0a4f9e", "#a1161a", "#7a4b00", "#146c2e", "#5b2a86", "#00677f", "#4a4f57"];

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      var spec = JSON.parse(canvas.dataset.chart);
      var doughnut = spec.type === "doughnut";
      var datasets = spec.series.map(function (s, i) {
        return {
          label: s.label, data: s.data,
          backgroundColor: doughnut ? palette.slice(0, s.data.length) : palette[i % palette.length],
          borderColor: doughnut ? "#ffffff" : palette[i % palette.length],
          fill: false, tension: 0.15, pointRadius: 2
        };
      });
      new window.Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: datasets },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          indexAxis: spec.horizontal ? "y" : "x",
          plugins: { legend: { display: spec.series.length > 1 || doughnut } }
        }
      });
      canvas.dataset.drawn = "1";
    });
  }

  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Date.parse(el.dataset.deadline) - Date.now();
      if (left <= 0) { el.textContent = el.dataset.overdue || "overdue"; return; }
      var h = Math.floor(left / 3600000), m = Math.floor((left % 3600000) / 60000);
      var s = Math.floor((left % 60000) / 1000);
      el.textContent = Math.floor(h / 24) + " d " + (h % 24) + " h " + m + " min " + s + " s";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    if (document.querySelector("[data-deadline]")) { tick(); window.setInterval(tick, 1000); }
  });
  document.addEventListener("htmx:afterSwap", function (e) { drawCharts(e.target); });
})();
