// The review page's script: local times, the list's refresh while checks run, and the player.
// No inline script anywhere (the page's Content-Security-Policy allows this file only);
// the player's data comes from the JSON block the server wrote (#review-data).
(function () {
  "use strict";

  function fmt(seconds) {
    var s = Math.max(0, seconds);
    var m = Math.floor(s / 60);
    var rest = (s - m * 60).toFixed(1);
    return m + ":" + (rest < 10 ? "0" : "") + rest;
  }

  // UTC stamps also shown in the reviewer's own time zone.
  function localTimes() {
    var nodes = document.querySelectorAll("time.local");
    for (var i = 0; i < nodes.length; i++) {
      var when = new Date(nodes[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        nodes[i].textContent = when.toLocaleString(undefined, { timeZoneName: "short" });
      }
    }
  }

  // The list: while the recordings are being checked, poll and reload when a verdict lands.
  function pollChecks() {
    var box = document.getElementById("checks");
    if (!box || box.getAttribute("data-checking") !== "yes") return;
    var url = (document.querySelector("a.brand").getAttribute("href") || "/") + "status.json";
    var seen = null;
    function tick() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          var now = JSON.stringify(body.verdicts);
          if (seen === null) seen = now;
          if (!body.checking || now !== seen) { window.location.reload(); return; }
          window.setTimeout(tick, 1000);
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    window.setTimeout(tick, 1000);
  }

  // The player: a verdict still being computed is filled in when it lands (no reload mid-video).
  function pollVerdict() {
    var box = document.getElementById("verdict");
    var block = document.getElementById("review-data");
    if (!box || !block || box.getAttribute("data-state") !== "pending") return;
    var id = JSON.parse(block.textContent).id;
    var url = (document.querySelector("a.brand").getAttribute("href") || "/") + "status.json";
    function tick() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          var state = body.verdicts[id];
          if (state && state !== "pending") {
            box.setAttribute("data-state", state);
            box.textContent = state + " (reload the page for the details)";
            box.className = state === "verified" ? "ok" : "fail";
            return;
          }
          window.setTimeout(tick, 1000);
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    window.setTimeout(tick, 1000);
  }

  function player() {
    var block = document.getElementById("review-data");
    if (!block) return;
    var data = JSON.parse(block.textContent);
    var tl = data.timeline;
    var pb = data.playback;
    var video = document.getElementById("video");
    var api = (window.review = { part: -1, errors: [], events: [] });

    // The device's wall clock at device time t (camera/inspection/wallclock.py, in JS).
    function wallAt(t) {
      if (!tl || tl.clock.anchor_ms === null) return null;
      var c = tl.clock;
      var stepped = 0;
      for (var i = 0; i < c.steps.length; i++) {
        var at = c.steps[i][0];
        stepped += c.steps[i][1] * ((at <= t ? 1 : 0) - (at <= c.anchor_time ? 1 : 0));
      }
      return new Date(c.anchor_ms + (t - c.anchor_time + stepped) * 1000);
    }

    if (tl) placeTimeline(tl);
    if (!pb || !video) return;

    var hls = null;
    var native = !window.Hls || !Hls.isSupported();
    var parts = native ? [{ url: "index.m3u8", start: pb.start, until: tl ? tl.end : Infinity }] : pb.parts;
    var errorBox = document.getElementById("player-error");
    var partInfo = document.getElementById("part-info");

    function say(text) { if (errorBox) errorBox.textContent = text; }

    function load(n, offset, play) {
      var part = parts[n];
      api.part = n;
      if (parts.length > 1 && partInfo) {
        partInfo.textContent = "part " + (n + 1) + " of " + parts.length +
          (part.audio ? " (with sound)" : " (no sound recorded)");
      }
      if (native) {
        if (!video.canPlayType("application/vnd.apple.mpegurl")) {
          say("This browser cannot play H.264 video through Media Source Extensions; " +
              "download the MP4 export instead.");
          return;
        }
        video.src = part.url;
        video.addEventListener("loadedmetadata", function once() {
          video.removeEventListener("loadedmetadata", once);
          video.currentTime = offset;
          if (play) video.play().catch(function (e) { api.errors.push("play: " + e); });
        });
        return;
      }
      if (hls) hls.destroy();
      var recovered = false;
      hls = new Hls({ startPosition: offset, enableWorker: true });
      api.hls = hls;
      hls.on(Hls.Events.ERROR, function (event, d) {
        var line = d.type + ": " + d.details + (d.fatal ? " (fatal)" : "") +
          (d.error && d.error.message ? ": " + d.error.message : "");
        api.errors.push(line);
        if (!d.fatal) return;
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
          recovered = true;
          hls.recoverMediaError();
          return;
        }
        say("The player stopped: " + line);
      });
      hls.on(Hls.Events.MANIFEST_PARSED, function () {
        api.events.push("manifest parsed: part " + n);
        if (play) video.play().catch(function (e) { api.errors.push("play: " + e); });
      });
      hls.loadSource(part.url);
      hls.attachMedia(video);
    }

    function partAt(t) {
      for (var i = parts.length - 1; i >= 0; i--) {
        if (t >= parts[i].start) return i;
      }
      return 0;
    }

    api.deviceTime = function () {
      return api.part < 0 ? pb.start : parts[api.part].start + video.currentTime;
    };
    api.seek = function (t) {
      var n = partAt(t);
      var offset = Math.max(0, t - parts[n].start);
      if (n === api.part) {
        video.currentTime = offset;
      } else {
        load(n, offset, !video.paused);
      }
    };

    video.addEventListener("ended", function () {
      if (api.part + 1 < parts.length) load(api.part + 1, 0, true);
    });

    var position = document.getElementById("position");
    var playhead = document.getElementById("playhead");
    var overlay = document.getElementById("playhead-time");
    function show() {
      var t = api.deviceTime();
      if (position && tl) position.textContent = fmt(t - tl.start);
      if (playhead && tl) playhead.style.left = pct(t, tl) + "%";
      var wall = wallAt(t);
      if (overlay && wall) overlay.textContent = wall.toISOString().replace("T", " ").replace("Z", " UTC");
    }
    // Every frame while playing (timeupdate alone lags the picture by up to a quarter second).
    function follow() {
      show();
      if (!video.paused && !video.ended) window.requestAnimationFrame(follow);
    }
    video.addEventListener("timeupdate", show);
    video.addEventListener("seeked", show);
    video.addEventListener("play", function () { window.requestAnimationFrame(follow); });

    var play = document.getElementById("play");
    if (play) {
      play.addEventListener("click", function () {
        if (video.paused) video.play().catch(function (e) { api.errors.push("play: " + e); });
        else video.pause();
      });
      video.addEventListener("play", function () { play.textContent = "pause"; });
      video.addEventListener("pause", function () { play.textContent = "play"; });
    }

    var jumps = document.querySelectorAll("[data-time]");
    for (var i = 0; i < jumps.length; i++) {
      jumps[i].addEventListener("click", function (event) {
        event.stopPropagation();
        api.seek(parseFloat(this.getAttribute("data-time")));
      });
    }
    var track = document.getElementById("track");
    if (track && tl) {
      track.addEventListener("click", function (event) {
        var box = track.getBoundingClientRect();
        var f = (event.clientX - box.left) / box.width;
        api.seek(tl.start + f * (tl.end - tl.start));
      });
    }
    function here() { return tl ? (api.deviceTime() - tl.start).toFixed(1) : "0"; }
    var from = document.getElementById("clip-from-here");
    var to = document.getElementById("clip-to-here");
    if (from) from.addEventListener("click", function () { document.getElementById("clip-start").value = here(); });
    if (to) to.addEventListener("click", function () { document.getElementById("clip-end").value = here(); });

    load(0, 0, false);
  }

  function pct(t, tl) {
    var span = tl.end - tl.start;
    return span > 0 ? Math.min(100, Math.max(0, ((t - tl.start) / span) * 100)) : 0;
  }

  // Spans (pre-event, gaps) and moments (trigger, markers, steps, stop) placed on the track.
  function placeTimeline(tl) {
    var spans = document.querySelectorAll("#track .span");
    for (var i = 0; i < spans.length; i++) {
      var a = parseFloat(spans[i].getAttribute("data-start"));
      var b = parseFloat(spans[i].getAttribute("data-end"));
      spans[i].style.left = pct(a, tl) + "%";
      spans[i].style.width = Math.max(0.4, pct(b, tl) - pct(a, tl)) + "%";
    }
    var moments = document.querySelectorAll("#track .moment");
    for (var j = 0; j < moments.length; j++) {
      moments[j].style.left = pct(parseFloat(moments[j].getAttribute("data-time")), tl) + "%";
    }
  }

  localTimes();
  pollChecks();
  pollVerdict();
  player();
})();
