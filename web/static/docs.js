// The API reference, from the vendored Swagger UI (no CDN; the CSP allows no inline script).
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    deepLinking: false,
    validatorUrl: null, // the default validator is another host
    tryItOutEnabled: false,
  });
});
