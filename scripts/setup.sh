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

# 2. Python environment, in two parts. The dependencies (torch and its CUDA wheels: about 6 GB) live
# in one environment shared by every clone, cached by the hash of the interpreter version and the
# dependency list; semrl itself is never installed there. Each clone gets its own thin environment,
# .venv, that sees the shared one's packages and holds only this clone's editable install and the
# commands, so two clones never run each other's code.
key=$("$python" - "$repo/pyproject.toml" <<'PY'
import hashlib, json, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
key = {"python": sys.version, "deps": project["dependencies"],
       "extras": project.get("optional-dependencies", {}), "layout": "dependencies only"}
print(hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16])
for extra in ("dev", "ray"):
    project["dependencies"] += project["optional-dependencies"][extra]
print("\n".join(d for d in project["dependencies"] if not d.startswith(("torch==", "torchvision=="))))
PY
)
deps_hash=$(head -n 1 <<<"$key")
mapfile -t requirements < <(tail -n +2 <<<"$key")
venv="$cache/venv-$deps_hash"
pip_quiet() { "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; }
if [ ! -f "$venv/.semrl-complete" ]; then
    log "creating the shared Python environment in $venv (first run: a few minutes)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    pip_quiet "$venv/bin/pip" install -q --upgrade pip
    # torch first and pinned, so nothing later pulls a different build.
    pip_quiet "$venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
    pip_quiet "$venv/bin/pip" install -q "${requirements[@]}" "setuptools>=68" wheel
    "$venv/bin/python" -c "import torch, torchvision, ultralytics, stable_baselines3, gymnasium, cv2, skimage, av, ray" ||
        { echo "[setup] error: the Python environment in $venv is incomplete" >&2; exit 1; }
    touch "$venv/.semrl-complete"
fi

thin="$repo/.venv"
# Asked from / in isolated mode, so a clone in the working directory cannot answer in the install's place.
here=$(cd / && "$thin/bin/python" -I -c 'import pathlib, semrl; print(pathlib.Path(semrl.__file__).parent.parent)' 2>/dev/null || true)
if [ "$(cat "$thin/.semrl-shared" 2>/dev/null)" != "$venv" ] || [ "$here" != "$repo" ]; then
    log "making this clone's environment $thin on top of $venv"
    rm -rf "$thin"  # also the layout before, where .venv was a link to the shared environment
    "$python" -m venv --without-pip "$thin"
    shared_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    # addsitedir, not a plain path line, so the shared packages' own .pth files run as well.
    "$thin/bin/python" - "$shared_site" <<'PY'
import pathlib, sys, sysconfig
line = f"import site; site.addsitedir({sys.argv[1]!r})\n"
pathlib.Path(sysconfig.get_path("purelib"), "_semrl_shared.pth").write_text(line)
PY
    out=$("$thin/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$repo" 2>&1) ||
        { echo "$out" >&2; echo "[setup] error: the editable install of $repo failed" >&2; exit 1; }
    # The shared environment's commands (pytest, ruff, mypy, ray, ...) run by this interpreter.
    for cmd in "$venv"/bin/*; do
        name=$(basename "$cmd")
        case "$name" in python* | pip* | activate* | Activate* | deactivate) continue ;; esac
        [ -e "$thin/bin/$name" ] && continue
        if [ "$(head -c 2 "$cmd")" = "#!" ] && head -n 1 "$cmd" | grep -q "^#!$venv/bin/python"; then
            { echo "#!$thin/bin/python"; tail -n +2 "$cmd"; } >"$thin/bin/$name"
            chmod +x "$thin/bin/$name"
        else
            ln -s "$cmd" "$thin/bin/$name"
        fi
    done
    (cd / && "$thin/bin/python" -I -c 'import semrl, envs, torch') ||
        { echo "[setup] error: this clone's environment $thin is incomplete" >&2; exit 1; }
    echo "$venv" >"$thin/.semrl-shared"
fi

# 3. The patched x265, cached by the hash of source, patches and flags.
prefix=$(bash "$repo/third_party/x265_patch/build.sh" | tail -n 1)
ln -sfn "$prefix" "$repo/.x265"
log "x265 prefix: $prefix"
log "ready: $repo/.venv/bin/semrl"
