#!/usr/bin/env bash
# The held-out clips of this folder's rule, losslessly (FFV1), into $1 (default /tmp/rc-heldout).
# market_street.mp4 comes from `python benchmarks/fresh_clips.py --set market-street -o /tmp/market`.
set -euo pipefail
out=${1:-/tmp/rc-heldout}
market=${MARKET:-/tmp/market/market_street.mp4}
bgs=${SEMRL_ASSETS:?set SEMRL_ASSETS}/videos-extra/bgslibrary_video03_320x240.avi
mkdir -p "$out"
cut() {  # source, first frame, name
  ffmpeg -v error -y -i "$1" -vf "trim=start_frame=$2:end_frame=$(($2 + 150)),setpts=PTS-STARTPTS" \
    -c:v ffv1 -an "$out/$3_f$2.mkv"
}
for start in 300 700 1100 1500; do cut "$market" "$start" market; done
for start in 300 900; do cut "$bgs" "$start" bgs03; done
ls "$out"
