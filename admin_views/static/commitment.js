/* 上报's 企业承诺书 (registration/commitment.html): the seconds left to read, counted down on the
   page; then 「本公司作出上述承诺」 may be ticked and 确认 is enabled. The server counts too and
   refuses an early confirmation. */
(function () {
  "use strict";
  var box = document.getElementById("commitment-countdown");
  var button = document.getElementById("commitment-confirm");
  var tick = document.getElementById("commitment-tick");
  if (!box || !button || !tick) { return; }
  var left = parseInt(box.getAttribute("data-remaining"), 10) || 0;
  if (left <= 0) { return; }
  var end = Date.now() + left * 1000;
  var timer = setInterval(function () {
    var now = Math.ceil((end - Date.now()) / 1000);
    if (now > 0) {
      document.getElementById("commitment-seconds").textContent = now;
      box.setAttribute("data-remaining", now);
      return;
    }
    clearInterval(timer);
    box.setAttribute("data-remaining", 0);
    box.className = "text-success";
    box.textContent = "阅读完成，请勾选承诺后确认上报";
    tick.disabled = false;
    button.disabled = false;
  }, 250);
}());
