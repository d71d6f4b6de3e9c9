#!/usr/bin/env bash
# Set up everything this project needs on a fresh Debian/Ubuntu machine: system packages,
# a virtual environment in .venv, and the project with its model and test extras.
# Idempotent: a second run only checks.
#
# Quiet by default: one line per step; apt's and pip's output goes to the log
# (build/setup.log, or AUTORAG_SETUP_LOG), whose tail is printed if a step fails.
#   AUTORAG_SETUP_VERBOSE=1 scripts/setup.sh   # show everything as it happens
#   scripts/setup.sh --check                   # say what is missing, change nothing (exit 1 if anything is)
set -euo pipefail
cd -P "$(dirname "$0")/.."  # the real checkout, also when scripts/ is reached through a link

APT_PACKAGES=(ffmpeg espeak-ng flite sox shellcheck chromium chromium-driver gcc g++ cmake python3-dev)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
LOG=${AUTORAG_SETUP_LOG:-build/setup.log}
VERBOSE=${AUTORAG_SETUP_VERBOSE:-0}
STAMP=.venv/.autorag-installed
TAIL_LINES=40

CHECK_ONLY=0
case "${1:-}" in
  "") ;;
  --check) CHECK_ONLY=1 ;;
  -h | --help)
    sed -n '2,9s/^# \{0,1\}//p' "$0"
    exit 0
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

mkdir -p "$(dirname "$LOG")"
printf '\n=== scripts/setup.sh %s, %s\n' "${1:-}" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" >>"$LOG"

# say STEP MESSAGE: the one line a step prints.
say() {
  echo "==> $1: $2"
}

# run STEP WHAT COMMAND...: run COMMAND (a function or program), its output in the log (and on the
# terminal when verbose); one line "==> STEP: WHAT ... ok (N s)", or on failure the log's tail and path.
run() {
  local step=$1 what=$2 start=$SECONDS rc
  shift 2
  echo "--- $step: $*" >>"$LOG"
  set +e
  if [ "$VERBOSE" = 1 ]; then
    say "$step" "$what"
    (set -e; "$@") 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    printf '==> %s: ' "$step"
  else
    printf '==> %s: %s ... ' "$step" "$what"
    (set -e; "$@") >>"$LOG" 2>&1
    rc=$?
  fi
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "FAILED (exit $rc, after $((SECONDS - start)) s); the last $TAIL_LINES lines of $LOG:"
    tail -n "$TAIL_LINES" "$LOG" | sed 's/^/    /'
    echo "==> full log: $LOG"
    exit "$rc"
  fi
  echo "ok ($((SECONDS - start)) s)"
}

missing_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

install_system_packages() {
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get -q update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "$@"
}

create_venv() {
  "$PYTHON" -m venv .venv
}

install_python_packages() {
  .venv/bin/python -m pip install --progress-bar off --upgrade pip
  # llama.cpp is compiled from source: portable CPU flags, no -march=native.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install --progress-bar off -e '.[llm,test]'
  .venv/bin/python -m pip check
}

pending=0

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
  say "system packages" "present"
elif ((CHECK_ONLY)); then
  say "system packages" "missing: ${missing[*]}"
  pending=1
else
  run "system packages" "installing ${missing[*]}" install_system_packages "${missing[@]}"
fi

if [ -x .venv/bin/python ]; then
  say "virtual environment" "present (.venv, $(.venv/bin/python --version))"
elif ((CHECK_ONLY)); then
  say "virtual environment" "missing (.venv)"
  pending=1
else
  run "virtual environment" "creating .venv with $("$PYTHON" --version)" create_venv
fi

# What is installed depends on pyproject.toml and on how it is installed, not on this script's wording.
want=$({ cat pyproject.toml; declare -f install_python_packages; } | sha256sum | cut -c1-16)
if [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  say "python packages" "up to date"
elif ((CHECK_ONLY)); then
  say "python packages" "to install (not installed yet, or pyproject.toml changed since)"
  pending=1
else
  run "python packages" "installing the project with its llm and test extras (first time: several minutes)" \
    install_python_packages
  echo "$want" >"$STAMP"
fi

if ((CHECK_ONLY)); then
  exit "$pending"
fi
echo "==> ready: .venv/bin/autorag --help"
