/* Behaviour the Content-Security-Policy forbids inline (README "Security headers"): under
   script-src 'self' 'nonce-…' no onclick=/onsubmit= attribute runs and no javascript: link
   navigates, so the pages carry data- attributes and this file, loaded on every admin page,
   does what those attributes did:
   - a form with data-confirm="…" asks before it is submitted (删除, 停用, 异常筛查 …);
   - an entry of Flask-Admin's 「With selected」 menu with data-model-action="…" runs that bulk
     action (admin/actions.html; actions.js asks for its confirmation and posts the form);
   - a link to javascript:void(0) (Flask-Admin's menu toggles, the current page of the pager)
     does nothing, instead of a navigation the browser would refuse and report;
   - 导出 (a form with an [data-export-token] input, or a link marked data-export-link) sends a
     fresh token; the download's response names it in the export_done cookie, and the page, which
     a download does not leave, says 「导出成功」 (004 §3.3.2; admin_views/exporting.export_done). */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    if (!event.target.closest) { return; }
    var link = event.target.closest("a[href^='javascript:']");
    if (link) { event.preventDefault(); }
    var action = event.target.closest("[data-model-action]");
    if (action && window.modelActions) {
      event.preventDefault();
      window.modelActions.execute(action.getAttribute("data-model-action"));
    }
  }, true);  // capture: Flask-Admin's dropdown script stops the click's propagation

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !event.defaultPrevented && !window.confirm(message)) {
      event.preventDefault();
    }
    var input = !event.defaultPrevented && event.target.querySelector &&
      event.target.querySelector("input[data-export-token]");
    if (input) { input.value = awaitExport(); }
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-export-link]");
    if (!link) { return; }
    var url = new URL(link.href, window.location.href);
    url.searchParams.set("export_token", awaitExport());
    link.href = url.toString();
  });

  var COOKIE = "export_done";

  function doneCookie() {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf(COOKIE + "=") === 0; })[0];
    return found ? decodeURIComponent(found.slice(COOKIE.length + 1)) : null;
  }

  function say(text) {
    var alert = document.createElement("div");
    alert.className = "alert alert-success alert-dismissable";
    alert.id = "export-done";
    alert.setAttribute("role", "status");
    alert.textContent = text;
    var old = document.getElementById("export-done");
    if (old) { old.remove(); }
    var anchor = document.querySelector(".alert") || document.getElementById("export-form") ||
      document.querySelector("h1, h2, h3, h4, h5, table");
    var container = anchor ? anchor.closest(".container, .container-fluid") : null;
    if (container) { container.insertBefore(alert, container.firstChild); } else { document.body.prepend(alert); }
  }

  // a token for this download; polls (for two minutes) until the download's response names it
  function awaitExport() {
    var token = Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
    var tries = 0;
    var timer = window.setInterval(function () {
      var value = doneCookie();
      tries += 1;
      if (value && value.split(".")[0] === token) {
        window.clearInterval(timer);
        document.cookie = COOKIE + "=; Max-Age=0; Path=/; SameSite=Strict";
        var rows = Number(value.split(".")[1] || 0);
        say("导出成功：共 " + rows.toLocaleString("en-US") + " 条，文件已开始下载");
      } else if (tries > 240) {
        window.clearInterval(timer);
      }
    }, 500);
    return token;
  }
}());
