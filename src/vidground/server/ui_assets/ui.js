// vidground web page: timeline clicks seek the <video id="vg-player"> and play the segment.
// Installed once in the page <head>; works on HTML that Gradio re-renders (event delegation).
(function () {
  if (window.__vgInstalled) return;
  window.__vgInstalled = true;

  function player() {
    return document.getElementById("vg-player");
  }

  function whenReady(v, fn) {
    if (v.readyState >= 1) fn();
    else v.addEventListener("loadedmetadata", fn, { once: true });
  }

  // Jump to `start` and play; pause again at `end` (the segment's end) when given.
  function seekPlay(start, end, play) {
    var v = player();
    if (!v || !isFinite(start)) return;
    whenReady(v, function () {
      v.dataset.vgSegEnd = play && isFinite(end) && end > start ? String(end) : "";
      v.currentTime = Math.max(0, start);
      window.__vgLastSeek = start;
      if (play) {
        var p = v.play();
        if (p && p.catch) p.catch(function () {});
      }
    });
  }
  window.vgSeekPlay = seekPlay;

  function onActivate(ev) {
    var el = ev.target.closest ? ev.target.closest("[data-vg-start]") : null;
    if (el) {
      ev.preventDefault();
      seekPlay(parseFloat(el.dataset.vgStart), parseFloat(el.dataset.vgEnd), true);
      return true;
    }
    return false;
  }

  document.addEventListener("click", function (ev) {
    if (onActivate(ev)) return;
    var track = ev.target.closest ? ev.target.closest(".vg-track") : null;
    if (track) {
      // click on the empty bar: seek there without playing
      var r = track.getBoundingClientRect();
      var d = parseFloat(track.dataset.vgDuration);
      if (r.width > 0 && isFinite(d)) {
        seekPlay(Math.min(d, Math.max(0, ((ev.clientX - r.left) / r.width) * d)), NaN, false);
      }
    }
  });

  document.addEventListener("keydown", function (ev) {
    if ((ev.key === "Enter" || ev.key === " ") && ev.target.classList &&
        ev.target.classList.contains("vg-seg")) {
      onActivate(ev);
    }
  });

  // timeupdate does not bubble: listen in the capture phase.
  document.addEventListener(
    "timeupdate",
    function (ev) {
      var v = ev.target;
      if (!v || v.id !== "vg-player") return;
      var end = parseFloat(v.dataset.vgSegEnd || "");
      if (isFinite(end) && v.currentTime >= end) {
        v.pause();
        v.dataset.vgSegEnd = "";
      }
      var track = document.querySelector(".vg-track");
      var head = document.querySelector(".vg-playhead");
      if (track && head) {
        var d = parseFloat(track.dataset.vgDuration);
        if (isFinite(d) && d > 0) {
          head.style.left = Math.min(100, (v.currentTime / d) * 100) + "%";
          head.style.display = "block";
        }
      }
    },
    true
  );

  // A video the browser cannot play (e.g. AVI): say so under the player.
  document.addEventListener(
    "error",
    function (ev) {
      var v = ev.target;
      if (!v || v.id !== "vg-player") return;
      var note = document.getElementById("vg-player-note");
      if (note) note.style.display = "block";
    },
    true
  );
})();
