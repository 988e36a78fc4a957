/*
 * The undo bar (templates/reviews/_undo_bar.html): it goes away when its window ends, so it never offers an
 * undo the server would refuse as too late. Its `z` key is review-keys.js's data-key="z"; the form is a plain
 * POST, so the bar works without this script too (a late click then says it is too late).
 */
(function () {
  "use strict";

  function expire(bar) {
    var seconds = parseInt(bar.getAttribute("data-undo-seconds"), 10);
    if (!(seconds > 0)) return;
    window.setTimeout(function () {
      bar.hidden = true;
    }, seconds * 1000);
  }

  Array.prototype.forEach.call(document.querySelectorAll(".undo-bar[data-undo-seconds]"), expire);
})();
