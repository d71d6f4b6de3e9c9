#!/usr/bin/env bash
# The GPU stack of docker-compose.yml: Ollama, Postgres and Dagster in Docker.
# Settings come from the shell or from .env (documented in .env.example); see docs/gpu-stack.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./scripts/stack.sh COMMAND

  up           start Ollama, wait until it is healthy, pull the models, then start Postgres
               and Dagster and print the UI address
  pull         pull the required models into Ollama (starting Ollama if needed)
  status       models present, loaded models (context, VRAM), GPU memory, Dagster health
  logs [SVC]   follow the logs of one service (ollama, postgres, code, webserver, daemon) or all
  down         stop the stack; models and Dagster's database stay on their volumes
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

die() {
  printf 'stack.sh: %s\n' "$*" >&2
  exit 1
}

step() { printf '==> %s\n' "$*"; }

compose() { docker compose "$@"; }

# The value of KEY from the shell, else from .env, else DEFAULT (the precedence Compose uses).
setting() {
  local key=$1 default=$2 line value
  if [[ -n ${!key:-} ]]; then
    printf '%s\n' "${!key}"
    return
  fi
  if [[ -f .env ]] && line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?${key}[[:space:]]*=" .env | tail -n 1); then
    value=${line#*=}
    value=${value%%[[:space:]]#*}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    value=${value#[\"\']}
    value=${value%[\"\']}
    if [[ -n $value ]]; then
      printf '%s\n' "$value"
      return
    fi
  fi
  printf '%s\n' "$default"
}

MODELS=("$(setting AUTORAG_LLM_MODEL gemma4:latest)" "$(setting AUTORAG_EMBED_MODEL nomic-embed-text)")
UI_URL="http://127.0.0.1:$(setting DAGSTER_UI_PORT 3000)"
WAIT_TIMEOUT=$(setting STACK_WAIT_TIMEOUT 600)

require_docker() {
  command -v docker >/dev/null 2>&1 ||
    die "Docker is not installed (no 'docker' on PATH). Install Docker Engine: https://docs.docker.com/engine/install/"
  docker compose version >/dev/null 2>&1 ||
    die "The Docker Compose plugin is missing ('docker compose version' fails). Install the docker-compose-plugin package: https://docs.docker.com/compose/install/linux/"
}

require_gpu_runtime() {
  local info
  info=$(docker info 2>&1) ||
    die "The Docker daemon does not answer ('docker info' fails): start it (sudo systemctl start docker) or add your user to the docker group. Docker said:"$'\n'"${info}"
  [[ $(setting STACK_SKIP_GPU_CHECK 0) == 1 ]] && return
  grep -qi nvidia <<<"$info" ||
    die "Docker has no NVIDIA GPU runtime: 'docker info' shows neither an nvidia runtime nor NVIDIA CDI devices. Install the NVIDIA Container Toolkit, run 'sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker', and check with 'docker run --rm --gpus all ubuntu nvidia-smi'. (STACK_SKIP_GPU_CHECK=1 skips this check.)"
}

# The audio and data volumes bind host folders, which must exist and be absolute.
prepare_folders() {
  local name base dir
  for name in AUDIO_DIR DATA_DIR; do
    base=${name%_DIR}
    dir=$(setting "$name" "./${base,,}")
    dir=${dir/#\~/$HOME}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    export "$name=$dir"
  done
}

start_ollama() {
  step "Starting Ollama and waiting until it is healthy"
  compose up -d --wait --wait-timeout "$WAIT_TIMEOUT" ollama ||
    die "Ollama did not become healthy within ${WAIT_TIMEOUT}s; nothing else was started. See: ./scripts/stack.sh logs ollama"
}

# Healthy with zero models is not ready: every LLM stage would answer 404.
pull_models() {
  local model flags=()
  # `compose exec` shows progress bars on a terminal; without one it needs -T.
  [[ -t 0 && -t 1 ]] || flags=(-T)
  for model in "${MODELS[@]}"; do
    step "Pulling $model"
    compose exec "${flags[@]}" ollama ollama pull "$model" ||
      die "Could not pull the model '$model' into Ollama; the rest of the stack was not started. Check the name (AUTORAG_LLM_MODEL / AUTORAG_EMBED_MODEL in .env), the host's internet access and free disk space, then run ./scripts/stack.sh up again."
  done
}

start_dagster() {
  step "Building the project image and starting Postgres and Dagster"
  compose up -d --build --wait --wait-timeout "$WAIT_TIMEOUT" ||
    die "The Dagster services did not become healthy within ${WAIT_TIMEOUT}s. See: ./scripts/stack.sh status and ./scripts/stack.sh logs"
  # A named pool's limit is kept in Dagster's database and set through the CLI.
  compose exec -T daemon dagster instance concurrency set gpu 1 >/dev/null ||
    die "Could not limit the concurrency pool 'gpu' to 1. See: ./scripts/stack.sh logs daemon"
  step "Dagster UI: $UI_URL"
}

# Ollama lists an untagged name with ":latest".
tagged() {
  if [[ ${1##*/} == *:* ]]; then
    printf '%s\n' "$1"
  else
    printf '%s\n' "$1:latest"
  fi
}

cmd_status() {
  local listing model healthy=1
  compose ps
  step "Required models"
  listing=$(compose exec -T ollama ollama list) ||
    die "Ollama does not answer. Start the stack: ./scripts/stack.sh up"
  for model in "${MODELS[@]}"; do
    if awk -v name="$(tagged "$model")" 'NR > 1 && $1 == name { found = 1 } END { exit !found }' <<<"$listing"; then
      printf '  present  %s\n' "$model"
    else
      printf '  MISSING  %s (run ./scripts/stack.sh pull)\n' "$model"
      healthy=0
    fi
  done
  step "Loaded models (context and VRAM)"
  compose exec -T ollama ollama ps || healthy=0
  step "GPU memory"
  compose exec -T ollama nvidia-smi --query-gpu=index,name,memory.used,memory.free,memory.total --format=csv ||
    healthy=0
  step "Dagster ($UI_URL)"
  if ! compose exec -T webserver python -c \
    "import urllib.request; print(urllib.request.urlopen('http://localhost:3000/server_info', timeout=5).read().decode())"; then
    printf '  the webserver does not answer (run ./scripts/stack.sh logs webserver)\n'
    healthy=0
  fi
  ((healthy))
}

main() {
  local command=${1:-}
  shift $(($# > 0))
  case $command in
    up)
      require_docker
      require_gpu_runtime
      prepare_folders
      start_ollama
      pull_models
      start_dagster
      ;;
    pull)
      require_docker
      require_gpu_runtime
      prepare_folders
      start_ollama
      pull_models
      ;;
    status)
      require_docker
      cmd_status
      ;;
    logs)
      require_docker
      compose logs -f --tail 200 "$@"
      ;;
    down)
      require_docker
      compose down
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
