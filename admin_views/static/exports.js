/* 我的导出 (issue 16): move the progress bars of jobs in flight without reloading the page;
   reload once a job has finished or failed, naming it (?finished=…), so its 下载 button and
   「导出成功」 (or its failure) appear. */
(function () {
  "use strict";
  var script = document.getElementById("exports-script");
  if (!script || !window.fetch) { return; }
  var url = script.getAttribute("data-status-url");

  function inFlight() {
    return Array.prototype.filter.call(document.querySelectorAll(".job-progress"), function (el) {
      var status = el.getAttribute("data-status");
      return status === "queued" || status === "running";
    });
  }

  function poll() {
    var waiting = inFlight();
    if (!waiting.length) { return; }
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var byId = {};
        data.jobs.forEach(function (job) { byId[String(job.id)] = job; });
        var ended = [];
        waiting.forEach(function (el) {
          var job = byId[el.getAttribute("data-job")];
          if (!job) { return; }
          if (job.status !== el.getAttribute("data-status") && job.status !== "queued" && job.status !== "running") {
            ended.push(job.id);
            return;
          }
          el.setAttribute("data-status", job.status);
          var bar = el.querySelector("progress");
          if (bar) { bar.value = job.percent; bar.textContent = job.percent + "%"; }
          var label = el.querySelector(".job-progress-label");
          if (label) { label.textContent = job.text; }
          var badge = document.querySelector('.job-status[data-job="' + job.id + '"]');
          if (badge) { badge.textContent = job.label; }
        });
        if (ended.length) {
          var next = new URL(window.location.href);
          next.searchParams.set("finished", ended.join(","));
          window.location.replace(next.toString());
          return;
        }
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 1000);
}());
