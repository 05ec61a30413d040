// Renders every <script type="application/json" id="spec-KEY"> (drawn into #chart-KEY) with the vendored vega-embed.
// The CSP forbids eval: vega runs its expressions through the interpreter (ast: true).
(function () {
  "use strict";
  function render() {
    document.querySelectorAll('script[type="application/json"][id^="spec-"]').forEach(function (node) {
      var target = document.getElementById("chart-" + node.id.slice(5));
      if (!target || !window.vegaEmbed) { return; }
      var spec = JSON.parse(node.textContent);
      window.vegaEmbed(target, spec, {
        actions: false, renderer: "svg", ast: true, expr: window.vega.expressionInterpreter,
        // vega-embed would inject an inline <style>, which the CSP (style-src 'self') blocks
        defaultStyle: false,
        // vega-tooltip would inject one too; the data table beside each chart carries the values
        tooltip: false
      }).then(function () { target.dataset.rendered = "1"; })
        .catch(function (err) { target.dataset.rendered = "error"; target.textContent = String(err); });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", render); }
  else { render(); }
})();
