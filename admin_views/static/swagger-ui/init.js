// 接口文档 (issue 20): Swagger UI over this app's own OpenAPI document, served by the app itself
// (no CDN) and started from this file, not an inline script (the Content-Security-Policy allows
// only the app's own files). The document's address comes from the page's data-spec-url.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui-container");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui-container",
    deepLinking: true,
    tryItOutEnabled: false,
    validatorUrl: null // the public validator is on the internet: never called
  });
})();
