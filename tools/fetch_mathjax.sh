#!/usr/bin/env bash
# Fetch MathJax 3 from the npm registry into _vendor/mathjax, which the build copies to the
# site root (html_extra_path), so equations render with nothing fetched from a CDN.
# Only the combined TeX component and its CHTML fonts are kept (about 3 MB).
set -euo pipefail
version=3.2.2
dest=_vendor/mathjax
[ -f "$dest/tex-chtml-full.js" ] && grep -q "$version" "$dest/VERSION" 2>/dev/null && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$version" >/dev/null && tar xzf "mathjax-$version.tgz")
rm -rf "$dest" && mkdir -p "$dest/output/chtml/fonts"
cp "$tmp/package/es5/tex-chtml-full.js" "$dest/"
cp -r "$tmp/package/es5/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/"
cp "$tmp/package/LICENSE" "$dest/"
echo "$version" > "$dest/VERSION"
