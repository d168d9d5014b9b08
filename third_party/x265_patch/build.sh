#!/usr/bin/env bash
# Fetch, verify, patch and build x265 3.5 with semrl's patch series.
#
# Source, in order of preference:
#   1. $SEMRL_X265_TARBALL: a local x265_3.5.orig.tar.gz / x265_3.5.tar.gz (offline users);
#   2. apt's source package, through a private source list derived from this machine's own apt
#      configuration (nothing under /etc/apt changes);
#   3. the x265 project's own release download.
# The build goes to $SEMRL_CACHE/x265/<hash of source, patches and flags>; a second run with
# nothing changed only checks the hash. The last line of output is the install prefix.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SEMRL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/semrl}
sha256=e70a3335cacacbba0b3a20ec6fecd6783932288ebc8163ad74bcc9606477cae8
tarball_name=x265_3.5.orig.tar.gz
upstream_url=https://bitbucket.org/multicoreware/x265_git/downloads/x265_3.5.tar.gz
jobs=${SEMRL_BUILD_JOBS:-$(nproc)}
cmake_flags=(
    -DCMAKE_BUILD_TYPE=Release -DENABLE_SHARED=ON -DENABLE_CLI=ON -DENABLE_ASSEMBLY=ON
    -DENABLE_PIC=ON -DHIGH_BIT_DEPTH=OFF -DENABLE_HDR10_PLUS=OFF -DENABLE_LIBNUMA=OFF
)

log() { printf '[x265] %s\n' "$*" >&2; }
die() { printf '[x265] error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$cache/x265"
src_dir="$cache/x265/src"
mkdir -p "$src_dir"
tarball="$src_dir/$tarball_name"

verify() { [ -f "$1" ] && echo "$sha256  $1" | sha256sum -c --status; }

fetch_from_apt() {
    command -v apt-get >/dev/null 2>&1 || return 1
    local work; work=$(mktemp -d)
    local sources=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && sources+=$(awk 'BEGIN{RS="";ORS="\n\n"} /Types:[^\n]*deb/ {gsub(/Types:[^\n]*/,"Types: deb-src"); print}' "$f")$'\n\n'
    done
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > "$work/one-line.list"
    fi
    printf '%s' "$sources" > "$work/src.sources"
    mkdir -p "$work/lists/partial"
    local opts=(-o "Dir::Etc::SourceParts=$work/parts" -o "Dir::State::Lists=$work/lists"
                -o "Dir::Etc::SourceList=$work/src.sources" -o "APT::Sandbox::User=root")
    mkdir -p "$work/parts"
    [ -s "$work/one-line.list" ] && cp "$work/one-line.list" "$work/parts/one-line.list"
    (cd "$work" && apt-get "${opts[@]}" update -qq >/dev/null 2>&1 &&
        apt-get "${opts[@]}" source --download-only x265 >/dev/null 2>&1) || { rm -rf "$work"; return 1; }
    [ -f "$work/$tarball_name" ] && mv "$work/$tarball_name" "$tarball.part" && mv "$tarball.part" "$tarball"
    rm -rf "$work"
    verify "$tarball"
}

fetch_from_upstream() {
    command -v curl >/dev/null 2>&1 || return 1
    curl -fsSL --retry 2 -o "$tarball.part" "$upstream_url" && mv "$tarball.part" "$tarball" && verify "$tarball"
}

if [ -n "${SEMRL_X265_TARBALL:-}" ]; then
    verify "$SEMRL_X265_TARBALL" || die "SEMRL_X265_TARBALL=$SEMRL_X265_TARBALL is missing or its sha256 is not $sha256"
    tarball=$SEMRL_X265_TARBALL
elif ! verify "$tarball"; then
    rm -f "$tarball"
    log "fetching the x265 3.5 source"
    fetch_from_apt || fetch_from_upstream || die "could not obtain $tarball_name (sha256 $sha256):
  no apt source package and no download. Put the tarball somewhere and set SEMRL_X265_TARBALL=/path/to/it"
fi

mapfile -t patches < <(find "$here/patches" -name '*.patch' | sort)
key=$( { echo "$sha256"; cat "${patches[@]}"; printf '%s\n' "${cmake_flags[@]}"; cat "$0"; } | sha256sum | cut -c1-16)
prefix="$cache/x265/3.5-semrl-$key"

if [ -f "$prefix/.semrl-complete" ]; then
    log "cached build $prefix"
    echo "$prefix"
    exit 0
fi

command -v cmake >/dev/null 2>&1 || die "cmake not found: run scripts/setup.sh, or apt-get install cmake"
command -v nasm >/dev/null 2>&1 || die "nasm not found (x265 without assembly is 3x slower): apt-get install nasm"

start=$(date +%s)
build_root=$(mktemp -d "$cache/x265/build.XXXXXX")
trap 'rm -rf "$build_root"' EXIT
log "building patched x265 in $build_root (about 2 minutes on 2 cores)"
# Extracted outside any git work tree: inside one, x265's Version.cmake asks git for a version,
# gets none and skips installing the shared library.
tar -xzf "$tarball" -C "$build_root"
srcroot=$(find "$build_root" -maxdepth 1 -mindepth 1 -type d | head -n 1)
for p in "${patches[@]}"; do
    patch -d "$srcroot" -p1 --quiet --forward < "$p" || die "patch $(basename "$p") does not apply"
done
staging="$prefix.tmp"
rm -rf "$staging"
mkdir -p "$build_root/build"
(
    cd "$build_root/build"
    cmake "$srcroot/source" "${cmake_flags[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_RPATH="$prefix/lib" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON >"$build_root/cmake.log" 2>&1 ||
        { tail -30 "$build_root/cmake.log" >&2; exit 1; }
    make -j"$jobs" >"$build_root/make.log" 2>&1 || { tail -40 "$build_root/make.log" >&2; exit 1; }
    make install DESTDIR="$build_root/dest" >>"$build_root/make.log" 2>&1
) || die "build failed (log above)"
mv "$build_root/dest$prefix" "$staging"
cp "${patches[@]}" "$staging/"
printf 'x265 3.5 + semrl patches\nkey %s\nsource sha256 %s\n' "$key" "$sha256" > "$staging/BUILD_INFO"
rm -rf "$prefix"
mv "$staging" "$prefix"
touch "$prefix/.semrl-complete"
log "built in $(( $(date +%s) - start )) s"
echo "$prefix"
