// The auditors' view (no inline script: the CSP forbids it). The print button prints the
// access report; a page that opens with an answer (the report, a policy diff) puts the
// keyboard and screen readers on that answer's heading.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-skriv-ut]") : null;
  if (button) window.print();
});

document.addEventListener("DOMContentLoaded", () => {
  const heading = document.querySelector("[data-fokus-ved-start]");
  if (heading) heading.focus();
});
