#!/usr/bin/env bash
# Vendor leaflet.fullscreen (MIT, Bruno Bergot) into static/vendor/ for the fullscreen button
# leafmap's folium maps add (folium.plugins.Fullscreen loads it from a CDN). The npm tarball's
# files are shipped unchanged (the UMD wrapper falls back to the global `L` in a <script> tag).
#
# Usage:  bash scripts/vendor_fullscreen.sh
set -euo pipefail
VERSION=3.0.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO_ROOT/static/vendor/leaflet-fullscreen"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor_fs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "leaflet.fullscreen@${VERSION}" >/dev/null
tar -xzf "leaflet.fullscreen-${VERSION}.tgz"
rm -rf "$DEST" && mkdir -p "$DEST"
cp package/Control.FullScreen.js package/Control.FullScreen.css package/icon-fullscreen.svg package/LICENSE "$DEST/"
echo "Vendored leaflet.fullscreen@${VERSION} into $DEST"
