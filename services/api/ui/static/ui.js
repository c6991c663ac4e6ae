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

  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < els.length; i++) poll(els[i]);
    var forms = document.querySelectorAll("form[role=search]");
    for (var j = 0; j < forms.length; j++) autoSubmit(forms[j]);
  });
})();
