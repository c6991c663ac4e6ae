// Tocsin dashboard: the little JavaScript it needs (no build step, no dependencies).
// Any element with data-poll="<url>" is refreshed from that partial every data-interval ms
// (default 5 s) without a page reload; a 401 (session expired) reloads the page to log in.
(function () {
  "use strict";

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-interval") || "5000", 10);
    var busy = false;

    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, {
        credentials: "same-origin",
        headers: { "X-Tocsin-Partial": "1" },
        cache: "no-store",
      })
        .then(function (resp) {
          if (resp.status === 401) {
            window.location.reload();
            return null;
          }
          if (!resp.ok) throw new Error("HTTP " + resp.status);
          return resp.text();
        })
        .then(function (html) {
          if (html !== null) {
            el.innerHTML = html;
            el.removeAttribute("data-stale");
            el.dispatchEvent(new CustomEvent("tocsin:refreshed", { bubbles: true }));
          }
        })
        .catch(function () {
          el.setAttribute("data-stale", "true"); // CSS greys out stale numbers
        })
        .finally(function () {
          busy = false;
        });
    }

    window.setInterval(refresh, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
  }

  // Filter selects submit on change, so a phone user need not scroll to the button.
  function autoSubmit(form) {
    var selects = form.querySelectorAll("select");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function () {
        form.submit();
      });
    }
  }

  // Times come in UTC (<time datetime="...Z">); show them on the reader's clock,
  // with the zone named, and keep the UTC text in the tooltip.
  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  function localTimes(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var d = new Date(times[i].getAttribute("datetime"));
      if (isNaN(d.getTime()) || times[i].getAttribute("data-local")) continue;
      var offset = -d.getTimezoneOffset();
      var sign = offset >= 0 ? "+" : "-";
      var label = zone && zone !== "UTC" && zone !== "Etc/UTC" ? zone : "UTC";
      if (offset !== 0 && label === "UTC") {
        label = "UTC" + sign + pad(Math.floor(Math.abs(offset) / 60)) + ":" + pad(Math.abs(offset) % 60);
      }
      times[i].textContent =
        d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + label;
      times[i].setAttribute("data-local", "1");
    }
  }

  document.addEventListener("tocsin:refreshed", function (ev) {
    localTimes(ev.target);
  });

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var els = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < els.length; i++) poll(els[i]);
    var forms = document.querySelectorAll("form[role=search]");
    for (var j = 0; j < forms.length; j++) autoSubmit(forms[j]);
  });
})();
