// The caseworkers' page: the number field, its control-digit check before anything is sent,
// and the keyboard shortcuts. The identity-number rule mirrors personkort/ident.py exactly
// (tests/browser/test_caseworker.py compares the two over many generated numbers).
"use strict";

(() => {
  // Python's str.isspace() set (what `\s` matches in personkort/ident.py), dots and dashes.
  const SEPARATORS =
    /[\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000.\-]+/g;
  const W1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
  const W2 = [5, 4, 3, 2, 7, 6, 5, 4, 3];

  function normalise(raw) {
    return String(raw).replace(SEPARATORS, "");
  }

  function controlDigits(first9) {
    let sum = 0;
    for (let i = 0; i < 9; i++) sum += W1[i] * Number(first9[i]);
    let k1 = 11 - (sum % 11);
    if (k1 === 11) k1 = 0;
    if (k1 === 10) return null;
    sum = 2 * k1;
    for (let i = 0; i < 9; i++) sum += W2[i] * Number(first9[i]);
    let k2 = 11 - (sum % 11);
    if (k2 === 11) k2 = 0;
    if (k2 === 10) return null;
    return [k1, k2];
  }

  function century(individual, yy) {
    if (individual <= 499) return 1900;
    if (individual <= 749 && yy >= 54) return 1800;
    if (individual >= 500 && yy <= 39) return 2000;
    if (individual >= 900 && yy >= 40) return 1900;
    return null;
  }

  function isDate(year, month, day) {
    if (month < 1 || month > 12 || day < 1) return false;
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
    return day <= days;
  }

  // The problem code personkort.ident.parse would raise, or null for a valid number.
  function problem(raw) {
    const value = normalise(raw);
    if (!value) return "empty";
    if (!/^[0-9]+$/.test(value)) return "not_digits";
    if (value.length !== 11) return "wrong_length";
    const expected = controlDigits(value.slice(0, 9));
    if (expected === null || Number(value[9]) !== expected[0]) return "control_digit_1";
    if (Number(value[10]) !== expected[1]) return "control_digit_2";
    let day = Number(value.slice(0, 2));
    let month = Number(value.slice(2, 4));
    const yy = Number(value.slice(4, 6));
    const individual = Number(value.slice(6, 9));
    if (day > 40) day -= 40; // D-nummer
    if (month > 80) month -= 80; // Skatteetaten's synthetic test numbers
    const base = century(individual, yy);
    if (base === null) return "no_century";
    if (!isDate(base + yy, month, day)) return "invalid_date";
    return null;
  }

  const WORDS = {
    empty: "Skriv inn et fødselsnummer eller D-nummer.",
    not_digits: "Nummeret kan bare ha sifre (mellomrom, punktum og bindestrek går an).",
    wrong_length: "Nummeret skal ha 11 siffer.",
    control_digit_1: "Kontrollsifrene stemmer ikke. Sjekk at nummeret er skrevet riktig.",
    control_digit_2: "Kontrollsifrene stemmer ikke. Sjekk at nummeret er skrevet riktig.",
    no_century: "Nummeret passer ikke med noe fødselsår. Sjekk at det er skrevet riktig.",
    invalid_date: "De seks første sifrene er ikke en dato. Sjekk at nummeret er skrevet riktig.",
  };

  function message(code, raw) {
    if (code === "wrong_length") {
      return `Nummeret har ${normalise(raw).length} siffer; det skal ha 11.`;
    }
    return WORDS[code];
  }

  window.personkortIdent = { normalise, problem, message };

  function field() {
    return document.getElementById("ident");
  }

  function focusField() {
    const input = field();
    if (!input) return;
    input.focus();
    input.select();
  }

  function typing(element) {
    if (!element) return false;
    const tag = element.tagName;
    return (
      element.isContentEditable ||
      tag === "TEXTAREA" ||
      tag === "SELECT" ||
      (tag === "INPUT" && !["button", "submit", "radio", "checkbox"].includes(element.type))
    );
  }

  function showError(text) {
    const input = field();
    const box = document.getElementById("ident-feil");
    if (box) box.textContent = text || "";
    if (input) {
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  // The check runs before htmx sends anything: a mistyped number never leaves the browser.
  document.addEventListener("htmx:confirm", (event) => {
    const form = event.detail.elt;
    if (!form || form.id !== "oppslag") return;
    const input = field();
    const code = problem(input.value);
    if (code) {
      event.preventDefault();
      showError(message(code, input.value));
      input.focus();
      return;
    }
    showError("");
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (!target) return;
    const wanted = target.querySelector("[data-fokus]");
    if (wanted) wanted.focus();
  });

  document.addEventListener("keydown", (event) => {
    if (event.altKey && event.key === "F3") {
      event.preventDefault();
      focusField();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const active = document.activeElement;
    if (event.key === "/") {
      if (active === field()) {
        event.preventDefault(); // not a character of any number
        return;
      }
      if (typing(active)) return;
      event.preventDefault();
      focusField();
      return;
    }
    // "?" is no character of a number either: it opens the help from the number field too.
    if (event.key === "?" && (active === field() || !typing(active))) {
      const help = document.getElementById("hjelp");
      if (help && !help.open) {
        event.preventDefault();
        help.showModal();
      }
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    // htmx's settle step copies a "style" attribute from the old element to its new copy,
    // and the CSP (no inline styles) refuses that: settle classes and sizes only.
    if (window.htmx) window.htmx.config.attributesToSettle = ["class", "width", "height"];
    focusField();
    const open = document.getElementById("vis-hjelp");
    const help = document.getElementById("hjelp");
    if (open && help) open.addEventListener("click", () => help.showModal());
    const input = field();
    if (input) input.addEventListener("input", () => showError(""));
  });
})();
