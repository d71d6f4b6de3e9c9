(function () {
  "use strict";
  var utterances = Array.prototype.slice.call(document.querySelectorAll("#transcript .utt"));

  function select(id) {
    var detail = document.getElementById("topic-" + id);
    if (!detail) return;
    document.querySelectorAll(".topic-detail").forEach(function (el) { el.hidden = el !== detail; });
    document.querySelector("#detail .hint").hidden = true;
    document.querySelectorAll("[data-select-topic]").forEach(function (el) {
      el.classList.toggle("selected", el.getAttribute("data-select-topic") === id);
    });
    var start = parseFloat(detail.getAttribute("data-start"));
    var end = parseFloat(detail.getAttribute("data-end"));
    var first = null;
    utterances.forEach(function (u) {
      var inside = parseFloat(u.getAttribute("data-start")) < end && parseFloat(u.getAttribute("data-end")) > start;
      u.classList.toggle("in-topic", inside);
      if (inside && !first) first = u;
    });
    if (first) first.scrollIntoView({ block: "start" });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-select-topic]");
    if (target) select(target.getAttribute("data-select-topic"));
  });
})();
