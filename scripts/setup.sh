#!/usr/bin/env bash
# Idempotent set-up of everything semrl needs on a fresh Debian/Ubuntu machine:
# system packages (only those missing), the Python environment, and the patched x265.
# A second run with nothing changed takes seconds: the environment and the x265 build are
# cached outside the clone, keyed by hashes of what they are made from.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SEMRL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/semrl}
python=${SEMRL_PYTHON:-python3}
mkdir -p "$cache"

log() { printf '[setup] %s\n' "$*" >&2; }

# 1. System packages: command -> Debian package.
declare -A wanted=(
    [cmake]=cmake [nasm]=nasm [ffmpeg]=ffmpeg [ffprobe]=ffmpeg [libde265-dec265]=libde265-examples
    [g++]=g++ [make]=make [patch]=patch
)
missing=()
for cmd in "${!wanted[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing system packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python environment, cached by the hash of the interpreter version and the dependency list.
deps_hash=$("$python" - "$repo/pyproject.toml" <<'PY'
import hashlib, json, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
key = {"python": sys.version, "deps": project["dependencies"],
       "extras": project.get("optional-dependencies", {})}
print(hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16])
PY
)
venv="$cache/venv-$deps_hash"
if [ ! -f "$venv/.semrl-complete" ]; then
    log "creating the Python environment in $venv (first run: a few minutes)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    pip_quiet() { "$venv/bin/pip" install -q "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; }
    pip_quiet --upgrade pip
    # torch first and pinned, so nothing later pulls a different build.
    pip_quiet torch==2.14.1 torchvision==0.29.1
    pip_quiet -e "$repo[dev,ray]"
    "$venv/bin/python" -c "import semrl, torch, torchvision, ultralytics, stable_baselines3, gymnasium, cv2, skimage, av, ray" ||
        { echo "[setup] error: the Python environment in $venv is incomplete" >&2; exit 1; }
    touch "$venv/.semrl-complete"
fi
ln -sfn "$venv" "$repo/.venv"
# The environment is shared between clones: point its editable install at this one. Asked from /
# in isolated mode, so a clone in the working directory cannot answer in the install's place.
here=$(cd / && "$venv/bin/python" -I -c 'import pathlib, semrl; print(pathlib.Path(semrl.__file__).parent.parent)' 2>/dev/null || true)
if [ "$here" != "$repo" ]; then
    "$venv/bin/pip" install -q --no-deps -e "$repo"
fi

# 3. The patched x265, cached by the hash of source, patches and flags.
prefix=$(bash "$repo/third_party/x265_patch/build.sh" | tail -n 1)
ln -sfn "$prefix" "$repo/.x265"
log "x265 prefix: $prefix"
log "ready: $repo/.venv/bin/semrl"
