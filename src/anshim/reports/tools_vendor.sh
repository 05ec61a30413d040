#!/bin/sh
# Re-vendors the chart libraries into static/reports/vendor/ at the pinned versions (npm pack;
# no CDN at run time: the CSP allows 'self' only). The committed files are the result.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/static/reports/vendor"
work=$(mktemp -d)
cd "$work"
npm pack --silent vega@6.2.0 vega-lite@6.4.1 vega-embed@7.1.0 vega-interpreter@2.2.1 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
cp vega-6.2.0/package/build/vega.min.js vega-lite-6.4.1/package/build/vega-lite.min.js \
   vega-embed-7.1.0/package/build/vega-embed.min.js "$out/"
# vega-interpreter ships as an ES module importing vega-util; the vega bundle exports the same
# vega-util functions, so it is wrapped as a classic script that adds vega.expressionInterpreter.
{
  echo "/* vega-interpreter 2.2.1 (BSD-3-Clause), wrapped as a classic script by anshim/reports/tools_vendor.sh: vega-util comes from the vega bundle. */"
  echo "(function (vega) {"
  echo "const { ascending, isString, DisallowedObjectProperties } = vega;"
  sed -e '1d' -e 's/^export { expression as expressionInterpreter };/vega.expressionInterpreter = expression;/' \
    vega-interpreter-2.2.1/package/build/vega-interpreter.js
  echo "})(window.vega);"
} > "$out/vega-interpreter.js"
rm -rf "$work"
