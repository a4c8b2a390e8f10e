// The panel works without this script; it only adds conveniences:
// confirmation before destructive actions, copy buttons, and "go back".
"use strict";
document.addEventListener("click", function (ev) {
  var el = ev.target.closest("[data-confirm],[data-copy],[data-back]");
  if (!el) return;
  if (el.dataset.confirm !== undefined && !window.confirm(el.dataset.confirm)) {
    ev.preventDefault();
  } else if (el.dataset.copy) {
    var src = document.getElementById(el.dataset.copy);
    src.select();
    var done = function () { el.textContent = "Copied"; };
    if (navigator.clipboard) navigator.clipboard.writeText(src.value).then(done, function () { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  } else if (el.dataset.back !== undefined && history.length > 1) {
    ev.preventDefault();
    history.back();
  }
});
