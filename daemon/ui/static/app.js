// sidehook history pages: local times, live lists, copy and retry
// buttons. The pages work without this script; it only adds to them.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var parts = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  var fmtThisYear = new Intl.DateTimeFormat(undefined, parts);
  var fmtFull = new Intl.DateTimeFormat(undefined, Object.assign({ year: "numeric" }, parts));
  var fmtClock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  var fmt = {
    format: function (d) {
      return (d.getFullYear() === new Date().getFullYear() ? fmtThisYear : fmtFull).format(d);
    }
  };

  // Show every <time> in the browser's zone; the UTC text moves to the
  // tooltip.
  function localize(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.title = el.getAttribute("title") || el.textContent;
      el.textContent = fmt.format(d);
      el.dataset.local = "1";
    });
  }

  function zoneNote() {
    var el = document.querySelector("[data-tz]");
    if (!el) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your browser's zone";
    el.textContent = "Times in " + zone + "; hover a time for UTC.";
  }

  // Live regions: fetch the page again and swap each [data-live] element
  // whose server markup changed. The markup comes from the same server
  // templates, so it is escaped as on a full load.
  var served = new Map();

  function startLive() {
    var regions = document.querySelectorAll("[data-live][id]");
    if (!regions.length) return;
    regions.forEach(function (el) { served.set(el.id, el.innerHTML); });
    var state = document.querySelector("[data-live-state]");
    var link = document.querySelector("[data-refresh]");
    if (link) link.hidden = true;
    if (state) state.hidden = false;
    var timer = null;
    var busy = false;

    function show(kind, text) {
      if (!state) return;
      state.className = "live-state " + kind;
      state.textContent = text;
      if (link) link.hidden = kind === "live";
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(tick, POLL_MS);
    }

    function tick() {
      if (document.hidden) {
        show("paused", "Paused");
        return;
      }
      if (busy) return schedule();
      busy = true;
      fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store", credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          served.forEach(function (old, id) {
            var fresh = doc.getElementById(id);
            var cur = document.getElementById(id);
            if (!fresh || !cur || fresh.innerHTML === old) return;
            served.set(id, fresh.innerHTML);
            cur.innerHTML = fresh.innerHTML;
            localize(cur);
            revealCopy(cur);
          });
          show("live", "Live · updated " + fmtClock.format(new Date()));
        })
        .catch(function () {
          show("offline", "Offline · retrying");
        })
        .then(function () {
          busy = false;
          schedule();
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) tick();
    });
    show("live", "Live");
    schedule();
  }

  function revealCopy(root) {
    root.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed";
      ta.style.opacity = "0";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy]");
    if (!b) return;
    var src = document.getElementById(b.getAttribute("data-copy"));
    if (!src) return;
    copyText(src.textContent).then(function () {
      b.textContent = "Copied";
    }, function () {
      b.textContent = "Select and copy";
    });
    setTimeout(function () { b.textContent = "Copy"; }, 2000);
  });

  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.matches("[data-retry]")) {
      var b = f.querySelector("button");
      // Disable after the submission has been built, so the click counts.
      setTimeout(function () {
        b.disabled = true;
        b.textContent = "Retrying…";
      }, 0);
    }
  });

  document.addEventListener("change", function (ev) {
    var f = ev.target.form;
    if (f && f.matches("[data-autosubmit]") && ev.target.tagName === "SELECT") {
      f.requestSubmit ? f.requestSubmit() : f.submit();
    }
  });

  function init() {
    startLive(); // first: it keeps the server's markup to compare with
    localize(document);
    zoneNote();
    revealCopy(document);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
