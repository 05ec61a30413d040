/* The class session page: how many answer sheets have arrived, refreshed every 3 seconds
 * (a count only; nobody sees an individual response). */
(function () {
  "use strict";
  var box = document.getElementById("class-count");
  if (!box) return;
  var strong = box.querySelector("strong");
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && strong) strong.textContent = String(data.count);
        if (data && data.open) setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 3000);
})();
