// The stewards' view: focus where the page's news is, and the chart drawn from the table of
// the same numbers (the table is the text alternative; the chart adds nothing it lacks).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const target = document.querySelector("[data-fokus-feil]") || document.querySelector("[data-fokus]");
  if (target) target.focus();
  drawChart();
});

// One dash pattern per line, so the lines are told apart without colour (WCAG 1.4.1).
const SERIES = [
  { label: "Kort", stroke: "#0063c1", dash: [], width: 2, scale: "store" },
  { label: "Lenker", stroke: "#5d6573", dash: [8, 4], width: 2, scale: "store" },
  { label: "Slått sammen", stroke: "#007629", dash: [2, 4], width: 2, scale: "sma" },
  { label: "Delt", stroke: "#a93d70", dash: [14, 6], width: 2, scale: "sma" },
  { label: "Karantene", stroke: "#ac4400", dash: [10, 4, 2, 4], width: 2, scale: "sma" },
  { label: "Vurderingskø", stroke: "#cb0035", dash: [], width: 4, scale: "sma" },
];

function xRange(xs) {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? [lo - 1, hi + 1] : [lo - 0.25, hi + 0.25];
}

function drawChart() {
  const host = document.getElementById("graf");
  const table = document.getElementById("graf-tall");
  if (!host || !table || !window.uPlot) return;
  const rows = Array.from(table.tBodies[0].rows);
  const xs = rows.map((r) => Number(r.dataset.natt));
  const columns = SERIES.map((_, i) =>
    rows.map((r) => {
      const text = r.cells[i + 1].dataset.verdi;
      return text === "" || text === undefined ? null : Number(text);
    }),
  );
  const options = {
    width: Math.max(320, Math.min(host.clientWidth || 800, 1100)),
    height: 280,
    legend: { show: false },
    cursor: { show: false },
    scales: {
      // Nights in order along x (the table gives their dates); one night alone gets room.
      x: { time: false, auto: false, range: xRange(xs) },
      store: { auto: true },
      sma: { auto: true },
    },
    axes: [
      {
        incrs: [1, 2, 5, 10, 20, 50, 100],
        values: (u, splits) => splits.map((v) => (Number.isInteger(v) && v > 0 ? "Natt " + v : "")),
      },
      { scale: "store", label: "Kort og lenker" },
      { scale: "sma", side: 1, label: "Endringer og kø", grid: { show: false } },
    ],
    series: [
      { label: "Natt" },
      ...SERIES.map((s) => ({
        label: s.label, stroke: s.stroke, dash: s.dash, width: s.width, scale: s.scale,
        points: { show: true, size: 6 },
      })),
    ],
  };
  // uPlot's own root carries no role: the host is the image, its label the summary.
  new window.uPlot(options, [xs, ...columns], host);
  host.querySelectorAll("canvas").forEach((c) => c.setAttribute("aria-hidden", "true"));
}
