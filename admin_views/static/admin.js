/* Behaviour the Content-Security-Policy forbids inline (README "Security headers"): under
   script-src 'self' 'nonce-…' no onclick=/onsubmit= attribute runs and no javascript: link
   navigates, so the pages carry data- attributes and this file, loaded on every admin page,
   does what those attributes did:
   - a form with data-confirm="…" asks before it is submitted (删除, 停用, 异常筛查 …);
   - an entry of Flask-Admin's 「With selected」 menu with data-model-action="…" runs that bulk
     action (admin/actions.html; actions.js asks for its confirmation and posts the form);
   - a link to javascript:void(0) (Flask-Admin's menu toggles, the current page of the pager)
     does nothing, instead of a navigation the browser would refuse and report. */
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
  });
}());
