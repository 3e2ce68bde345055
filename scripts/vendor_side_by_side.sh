#!/usr/bin/env bash
# Vendor leaflet-side-by-side (MIT, Gregor MacLennan / Digital Democracy) into static/vendor/ for
# the offline swipe map. The npm tarball ships only the CommonJS source (index.js requiring
# 'leaflet' and two CSS files, built with browserify upstream); this script wraps it for a plain
# <script> tag: `require('leaflet')` becomes the global `L`, the two CSS requires are dropped
# (the CSS files are shipped as they are), `module.exports` goes to a local object. Nothing else
# in the code changes.
#
# Usage:  bash scripts/vendor_side_by_side.sh
set -euo pipefail
VERSION=2.2.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO_ROOT/static/vendor/leaflet-side-by-side"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor_sbs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "leaflet-side-by-side@${VERSION}" >/dev/null
tar -xzf "leaflet-side-by-side-${VERSION}.tgz"
rm -rf "$DEST" && mkdir -p "$DEST"
{
  echo "/* leaflet-side-by-side ${VERSION} (MIT, see LICENSE), wrapped for a <script> tag by scripts/vendor_side_by_side.sh */"
  echo "(function () {"
  echo "var module = {exports: {}};"
  sed -e "s#^var L = require('leaflet')#var L = window.L#" \
      -e "/^require('.\/layout.css')/d" -e "/^require('.\/range.css')/d" package/index.js
  echo "})();"
} > "$DEST/leaflet-side-by-side.js"
cp package/layout.css package/range.css package/range-icon.png package/LICENSE "$DEST/"
echo "Vendored leaflet-side-by-side@${VERSION} into $DEST"
