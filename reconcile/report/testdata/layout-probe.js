// Layout probe for the browser test of the HTML report (scripts/render-html.sh
// loads it after the page's own script): it measures what only a browser
// knows and writes it into the DOM as JSON, in <pre id="layout-probe">, for
// TestHTMLLayoutInBrowser to read from the dumped DOM. Not part of the page.
(function () {
  "use strict";
  var vw = window.innerWidth, de = document.documentElement;
  // clipped: inside an element that scrolls or clips sideways itself.
  function clipped(e) {
    for (var a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      var o = getComputedStyle(a).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") { return true; }
    }
    return false;
  }
  var wide = [];
  var all = document.body.getElementsByTagName("*");
  for (var i = 0; i < all.length && wide.length < 20; i++) {
    var e = all[i], r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 1 && !clipped(e)) {
      wide.push(e.tagName.toLowerCase() + (e.className ? "." + String(e.className).split(" ").join(".") : "") + " right=" + Math.round(r.right));
    }
  }
  var cut = [];
  var spans = document.querySelectorAll(".mx .acct > span");
  for (var j = 0; j < spans.length; j++) {
    var s = spans[j];
    if (s.scrollHeight > s.clientHeight + 1) { cut.push(s.textContent); }
  }
  var p = document.createElement("pre");
  p.id = "layout-probe";
  p.textContent = JSON.stringify({
    viewport: vw, scrollWidth: Math.max(de.scrollWidth, document.body.scrollWidth),
    overflowing: wide, headers: spans.length, cutHeaders: cut, title: document.title
  });
  document.body.appendChild(p);
})();
