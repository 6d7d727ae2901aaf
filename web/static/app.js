// Shared by every page: htmx swaps refusals too (they are HTML fragments in plain words), and
// after a swap the new answer's heading takes focus and is announced to screen readers.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (window.htmx) {
    window.htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[45]..", swap: true, error: false },
      { code: "...", swap: false },
    ];
  }
});

document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (!target || !target.hasAttribute("data-fokus-etter-svar")) return;
  const heading = target.querySelector("[data-overskrift], h2, h1");
  if (heading) {
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus();
    const live = document.getElementById("kunngjoring");
    if (live) live.textContent = heading.textContent.trim();
  }
});

// A session that ran out: the server answers 401 with a sign-in address; go there.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr && xhr.status === 401 && xhr.getResponseHeader("HX-Redirect")) {
    event.detail.shouldSwap = false;
  }
});
