// cloudeye console: the little that needs a script. Everything works without it but the chart.
// Served as a file (never inline) so the Content-Security-Policy allows scripts from 'self' only.
"use strict";

// Buttons that delete or revoke ask first (data-confirm holds the question).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// The response-time chart (uPlot): [unix s, ms or null, share of checks up] points from chart.json.
(function () {
  var box = document.querySelector(".chart[data-chart-src]");
  if (!box || typeof uPlot === "undefined") return;
  var plot = null;

  function size() {
    return { width: Math.max(300, box.clientWidth), height: 260 };
  }

  function draw(body) {
    var points = body.points;
    if (plot) { plot.destroy(); plot = null; }
    box.textContent = "";
    if (!points.length) {
      var empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = box.getAttribute("data-empty");
      box.appendChild(empty);
      return;
    }
    var data = [[], [], []];
    points.forEach(function (p) { data[0].push(p[0]); data[1].push(p[1]); data[2].push(p[2] === null ? null : p[2] * 100); });
    var dims = size();
    plot = new uPlot({
      width: dims.width,
      height: dims.height,
      series: [
        {},
        { label: box.getAttribute("data-label-ms"), stroke: "#0b5fff", width: 1.5, fill: "rgba(11,95,255,0.08)",
          spanGaps: false, value: function (u, v) { return v === null ? "—" : v.toFixed(0) + " ms"; } },
        { label: box.getAttribute("data-label-up"), stroke: "#2da44e", width: 1, scale: "%",
          value: function (u, v) { return v === null ? "—" : v.toFixed(1) + "%"; } }
      ],
      axes: [
        {},
        { label: "ms", size: 60 },
        { side: 1, scale: "%", label: "%", grid: { show: false }, size: 50 }
      ],
      scales: {
        x: { time: true, range: function () { return [body.from, body.to]; } },
        "%": { range: [0, 100] }
      }
    }, data, box);
  }

  function load(windowName) {
    box.setAttribute("data-window", windowName);
    box.setAttribute("aria-busy", "true");
    fetch(box.getAttribute("data-chart-src") + "?window=" + encodeURIComponent(windowName), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(draw)
      .catch(function (error) { box.textContent = String(error); })
      .finally(function () { box.removeAttribute("aria-busy"); box.setAttribute("data-loaded", windowName); });
  }

  document.querySelectorAll("[data-test=chart-windows] a[data-window]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      document.querySelectorAll("[data-test=chart-windows] a").forEach(function (a) { a.classList.remove("active"); });
      link.classList.add("active");
      load(link.getAttribute("data-window"));
    });
  });
  window.addEventListener("resize", function () { if (plot) plot.setSize(size()); });
  load(box.getAttribute("data-window") || "24h");
})();

// A maintenance window's form shows the fields of the kind chosen (once or every week). Without the
// script both show, and the chosen kind decides which are used.
(function () {
  var kinds = document.querySelectorAll("input[data-kind]");
  if (!kinds.length) return;
  function show() {
    var chosen = document.querySelector("input[data-kind]:checked");
    document.querySelectorAll("[data-kind-of]").forEach(function (box) {
      box.hidden = Boolean(chosen) && box.getAttribute("data-kind-of") !== chosen.value;
    });
  }
  kinds.forEach(function (input) { input.addEventListener("change", show); });
  show();
})();
