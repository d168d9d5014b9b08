#!/usr/bin/env bash
# The clips of this folder's rule, losslessly (FFV1), into $1 (default /tmp/rc-ctu).
# The sources come from `python benchmarks/fresh_clips.py --set opencv-doc -o /tmp/fc-opencv-doc` and
# `--set tracking -o /tmp/fc-tracking`.
set -euo pipefail
out=${1:-/tmp/rc-ctu}
mkdir -p "$out"
cut() {  # source, first frame, name
  ffmpeg -v error -y -i "$1" -vf "trim=start_frame=$2:end_frame=$(($2 + 150)),setpts=PTS-STARTPTS" \
    -c:v ffv1 -an "$out/$3_f$2.mkv"
}
cut /tmp/fc-opencv-doc/Megamind.avi 0 megamind
cut /tmp/fc-opencv-doc/box.mp4 0 box
cut /tmp/fc-opencv-doc/box.mp4 300 box
cut /tmp/fc-opencv-doc/cup.mp4 0 cup
cut /tmp/fc-tracking/minions.mp4 300 minions
cut /tmp/fc-tracking/minions.mp4 1200 minions
ls "$out"
