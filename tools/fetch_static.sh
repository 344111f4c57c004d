#!/usr/bin/env bash
# Fetch the JavaScript the rendered course serves itself, so pages work offline:
# the ipywidgets HTML manager (widget state embedded in each page) and MathJax.
# Pinned versions from the npm registry; nothing is loaded from a CDN at read time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/_static_widgets"
WIDGETS_VERSION=1.0.15
MATHJAX_VERSION=3.2.2
stamp="$dest/.versions"
want="html-manager=$WIDGETS_VERSION mathjax=$MATHJAX_VERSION"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
command -v npm >/dev/null || { echo "npm is needed once to fetch the offline widget/MathJax bundles (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@jupyter-widgets/html-manager@$WIDGETS_VERSION" "mathjax@$MATHJAX_VERSION" >/dev/null)
mkdir -p "$tmp/w" "$tmp/m"
tar xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$tmp/w"
tar xzf "$tmp"/mathjax-*.tgz -C "$tmp/m"
rm -rf "$dest"; mkdir -p "$dest/mathjax"
# embed.js is self-contained (no require.js); its icon fonts sit beside it.
cp "$tmp/w/package/dist/embed.js" "$tmp/w/package/dist/"*.woff* "$tmp/w/package/dist/"*.ttf \
   "$tmp/w/package/dist/"*.eot "$tmp/w/package/dist/"*.svg "$dest/"
# MathJax: SVG output needs no font files; keep the TeX extensions it may autoload.
cp "$tmp/m/package/es5/tex-svg.js" "$dest/mathjax/"
cp -r "$tmp/m/package/es5/input" "$tmp/m/package/es5/ui" "$dest/mathjax/"
echo "$want" > "$stamp"
echo "fetched offline bundles into $dest"
