#!/usr/bin/env bash
# Refreshes the vendored front-end files from the npm registry (run by hand, never at run time;
# the results are committed). Versions are pinned here and in web/static/vendor/VENDOR.md.
set -euo pipefail
cd "$(dirname "$0")"
OUT=static/vendor
TESTS=../tests/browser/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fetch() { (cd "$WORK" && mkdir -p "$2" && npm pack "$1" --silent >/dev/null && tar xzf ./*.tgz -C "$2" && rm ./*.tgz); }

fetch htmx.org@2.0.11 htmx
fetch uplot@1.6.32 uplot
fetch @navikt/ds-css@8.16.2 dscss
fetch @fontsource/source-sans-3@5.3.1 font
fetch swagger-ui-dist@5.35.0 swagger
fetch axe-core@4.14.1 axe

rm -rf "$OUT" && mkdir -p "$OUT"/{htmx,uplot,ds-css,source-sans-3/files,swagger-ui} "$TESTS/axe-core"
cp "$WORK"/htmx/package/dist/htmx.min.js "$WORK"/htmx/package/LICENSE "$OUT/htmx/"
cp "$WORK"/uplot/package/dist/uPlot.iife.min.js "$WORK"/uplot/package/dist/uPlot.min.css \
   "$WORK"/uplot/package/LICENSE "$OUT/uplot/"
# NAV's design system, without its @font-face rules: they point at cdn.nav.no. The same font
# (Source Sans 3) is served from here instead (source-sans-3/fonts.css).
python3 - "$WORK/dscss/package/dist/index.min.css" "$OUT/ds-css/index.min.css" <<'PY'
import re, sys
css = open(sys.argv[1], encoding="utf-8").read()
css = re.sub(r"@font-face\{[^}]*\}", "", css)
assert "http" not in css.replace("http://www.w3.org", ""), "ds-css still names another host"
open(sys.argv[2], "w", encoding="utf-8").write(css)
PY
for w in 400 600 700; do
  cp "$WORK/font/package/files/source-sans-3-latin-$w-normal.woff2" "$OUT/source-sans-3/files/"
  sed -e '/\.woff)/!b' -e "s/, url(\.\/files\/source-sans-3-latin-$w-normal\.woff) format('woff')//" \
    "$WORK/font/package/latin-$w.css" >> "$OUT/source-sans-3/fonts.css"
done
cp "$WORK"/font/package/LICENSE "$OUT/source-sans-3/"
cp "$WORK"/swagger/package/{swagger-ui-bundle.js,swagger-ui.css,LICENSE} "$OUT/swagger-ui/"
cp "$WORK"/axe/package/{axe.min.js,LICENSE} "$TESTS/axe-core/"
echo "vendored into $OUT and $TESTS"
