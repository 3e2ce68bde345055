#!/usr/bin/env bash
# Reproduce static/vendor/ (offline Leaflet, Leaflet.draw and leaflet.fullscreen for the leafmap / folium
# maps) from npm; leaflet-side-by-side, which needs wrapping, has scripts/vendor_side_by_side.sh.
#
# Usage:  bash scripts/vendor_leaflet.sh            (run from anywhere)
#
# Versions match what folium 0.20.0 loads from CDNs:
#   folium/folium.py        _default_js  -> leaflet@1.9.3
#   folium/plugins/draw.py  default_js   -> leaflet.draw 1.0.2 (npm: leaflet-draw@1.0.2)
#   folium/plugins/fullscreen.py default_js -> leaflet.fullscreen@3.0.0 (leafmap's fullscreen button)
# Only the dist files the map needs are copied. jQuery, Bootstrap, font-awesome,
# Leaflet.awesome-markers and leaflet.awesome.rotate are NOT vendored: ui/offline_map.py
# drops them from the Map (nothing in our maps uses them).
set -euo pipefail

LEAFLET_VERSION=1.9.3
LEAFLET_DRAW_VERSION=1.0.2
FULLSCREEN_VERSION=3.0.0

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO_ROOT/static/vendor"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor_leaflet.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "leaflet@${LEAFLET_VERSION}" "leaflet-draw@${LEAFLET_DRAW_VERSION}" \
    "leaflet.fullscreen@${FULLSCREEN_VERSION}" >/dev/null
mkdir leaflet leaflet-draw leaflet-fullscreen
tar -xzf "leaflet-${LEAFLET_VERSION}.tgz" -C leaflet --strip-components=1
tar -xzf "leaflet-draw-${LEAFLET_DRAW_VERSION}.tgz" -C leaflet-draw --strip-components=1
tar -xzf "leaflet.fullscreen-${FULLSCREEN_VERSION}.tgz" -C leaflet-fullscreen --strip-components=1

rm -rf "$DEST/leaflet" "$DEST/leaflet-draw" "$DEST/leaflet-fullscreen"
mkdir -p "$DEST/leaflet/images" "$DEST/leaflet-draw/images" "$DEST/leaflet-fullscreen"

# Leaflet: minified JS, CSS, marker/layer icons, licence.
cp leaflet/dist/leaflet.js leaflet/dist/leaflet.css "$DEST/leaflet/"
cp leaflet/dist/images/*.png "$DEST/leaflet/images/"
cp leaflet/LICENSE "$DEST/leaflet/LICENSE"
# Files are copied verbatim (byte-identical to the npm tarballs). leaflet.js ends with a
# sourceMappingURL comment; the .map is deliberately not shipped (only dev-tools ask for it).

# Leaflet.draw: minified JS, CSS, toolbar spritesheets (the only images leaflet.draw.css uses).
cp leaflet-draw/dist/leaflet.draw.js leaflet-draw/dist/leaflet.draw.css "$DEST/leaflet-draw/"
cp leaflet-draw/dist/images/spritesheet.png leaflet-draw/dist/images/spritesheet-2x.png \
   leaflet-draw/dist/images/spritesheet.svg "$DEST/leaflet-draw/images/"

# leaflet.fullscreen: JS, CSS, the icon its CSS uses, licence (the UMD wrapper falls back to the global L).
cp leaflet-fullscreen/Control.FullScreen.js leaflet-fullscreen/Control.FullScreen.css \
   leaflet-fullscreen/icon-fullscreen.svg leaflet-fullscreen/LICENSE "$DEST/leaflet-fullscreen/"

# The leaflet-draw npm tarball ships no LICENSE file (package.json says "MIT").
# This is the upstream MIT-LICENSE.md from https://github.com/Leaflet/Leaflet.draw
cat > "$DEST/leaflet-draw/LICENSE" <<'LICENSE_EOF'
Copyright 2012-2016 Jacob Toye and Leaflet

Permission is hereby granted, free of charge, to any person obtaining
a copy of this software and associated documentation files (the
"Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to
the following conditions:

The above copyright notice and this permission notice shall be
included in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE
LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION
OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
LICENSE_EOF

echo "Vendored leaflet@${LEAFLET_VERSION}, leaflet-draw@${LEAFLET_DRAW_VERSION} and leaflet.fullscreen@${FULLSCREEN_VERSION} into $DEST:"
du -sh "$DEST"
