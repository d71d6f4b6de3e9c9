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

  // A time in the address: page.html#t=72 (seconds), #t=1:12 or #t=0:01:12, a range #t=72,90,
  // and the media-fragment form #t=npt:72. The transcript at that time is highlighted and
  // scrolled to, on load and whenever the address changes.
  function seconds(text) {
    if (!/^\d+(\.\d+)?(:\d+(\.\d+)?){0,2}$/.test(text)) return NaN;
    return text.split(":").reduce(function (total, part) { return total * 60 + parseFloat(part); }, 0);
  }

  function timeIn(hash) {
    var match = /(?:^#|&)t=(?:npt:)?([0-9:.]*)(?:,([0-9:.]+))?(?:&|$)/.exec(hash);
    if (!match) return null;
    var start = match[1] === "" ? 0 : seconds(match[1]);
    var end = match[2] === undefined ? start : seconds(match[2]);
    if (isNaN(start) || isNaN(end) || end < start) return null;
    return { start: start, end: end };
  }

  function goToTime() {
    var time = timeIn(window.location.hash);
    if (!time || !utterances.length) return;
    var marked = utterances.filter(function (u) {
      var start = parseFloat(u.getAttribute("data-start"));
      var end = parseFloat(u.getAttribute("data-end"));
      return time.end > time.start ? start < time.end && end > time.start : start <= time.start && time.start < end;
    });
    if (!marked.length) {  // silence at that time: the last thing said before it, else the first
      var before = utterances.filter(function (u) { return parseFloat(u.getAttribute("data-start")) <= time.start; });
      marked = [before.length ? before[before.length - 1] : utterances[0]];
    }
    utterances.forEach(function (u) {
      var on = marked.indexOf(u) !== -1;
      u.classList.toggle("at-time", on);
      if (on) u.setAttribute("aria-current", "time"); else u.removeAttribute("aria-current");
    });
    marked[0].scrollIntoView({ block: "start" });
  }

  window.addEventListener("hashchange", goToTime);
  goToTime();
})();
