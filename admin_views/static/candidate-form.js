/* 在线编辑考生信息 (issue 17 item 12): the 等级 list offers the levels the chosen 职业(工种) has in
   the institution's 职业(工种)范围 (the select's data-scope: {occupation id: [[level id, name], …]},
   初级 first); a post without levels offers only 无等级. The server checks the pair again. */
(function () {
  "use strict";
  var occupation = document.getElementById("c-occupation");
  var level = document.getElementById("c-level");
  if (!occupation || !level) { return; }
  var scope = JSON.parse(occupation.getAttribute("data-scope") || "{}");

  function fill() {
    var chosen = occupation.value;
    var keep = level.value;
    var levels = chosen ? (scope[chosen] || []) : [];
    while (level.options.length) { level.remove(0); }
    level.add(new Option(levels.length || !chosen ? "请选择" : "无等级", ""));
    levels.forEach(function (pair) {
      level.add(new Option(pair[1], String(pair[0]), false, String(pair[0]) === keep));
    });
    level.disabled = Boolean(chosen) && !levels.length;
  }

  occupation.addEventListener("change", fill);
  fill();
}());
