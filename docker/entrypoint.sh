#!/usr/bin/env bash
# Entrypoint of the farm image: one image, three roles.
#
#   scheduler [ARGS]  dask scheduler, comm on :8786, dashboard and /health on :8787
#   worker [ARGS]     dask worker for the scheduler in $DASK_SCHEDULER_ADDRESS (or in ARGS):
#                     comm on :8789, nanny on :8790, dashboard and /health on :8788
#   healthcheck       probe of the role this container runs (the image's HEALTHCHECK)
#   anything else     the farm CLI: `run CONFIG --out ... --scheduler tcp://...`, `plan`, ...
#
# Fixed ports let a NetworkPolicy name them; FARM_PORT_SCHEDULER, FARM_PORT_SCHEDULER_DASHBOARD,
# FARM_PORT_WORKER, FARM_PORT_NANNY and FARM_PORT_WORKER_DASHBOARD move them (names chosen so that
# no Kubernetes service-link variable, <SERVICE>_PORT=tcp://..., can collide with them). ARGS
# come after the defaults, so a repeated option in ARGS wins.
#
# The root filesystem may be read-only: all writes go to /tmp (scratch, the worker's spill
# directory, the role file read by `healthcheck`) and /data (event stores, results).
#
# TLS: when $FARM_TLS_DIR holds ca.pem, cert.pem and key.pem (the layout `farm cluster certs`
# writes), scheduler and workers listen on tls:// and refuse unencrypted connections.
set -euo pipefail

readonly state_dir="${FARM_STATE_DIR:-/tmp}"
readonly role_file="${state_dir}/farm-role"

die() {
  printf 'farm-entrypoint: %s\n' "$*" >&2
  exit 64
}

# Export dask's TLS settings (environment form of the distributed.comm config) when asked for.
configure_tls() {
  local dir="${FARM_TLS_DIR:-}"
  [[ -n "${dir}" ]] || return 0
  local name
  for name in ca.pem cert.pem key.pem; do
    [[ -r "${dir}/${name}" ]] ||
      die "FARM_TLS_DIR=${dir} has no readable ${name}; mount the secret made by 'farm cluster certs' there, or unset FARM_TLS_DIR"
  done
  export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True
  export DASK_DISTRIBUTED__COMM__DEFAULT_SCHEME=tls
  export DASK_DISTRIBUTED__COMM__TLS__CA_FILE="${dir}/ca.pem"
  local who
  for who in SCHEDULER WORKER CLIENT; do
    export "DASK_DISTRIBUTED__COMM__TLS__${who}__CERT=${dir}/cert.pem"
    export "DASK_DISTRIBUTED__COMM__TLS__${who}__KEY=${dir}/key.pem"
  done
}

protocol() {
  if [[ -n "${FARM_TLS_DIR:-}" ]]; then echo tls; else echo tcp; fi
}

# Remember which role runs here and where its /health lives, for `healthcheck`.
record_role() {
  printf '%s %s\n' "$1" "$2" >"${role_file}" 2>/dev/null ||
    printf 'farm-entrypoint: cannot write %s (mount a writable /tmp); the health check will pass blindly\n' \
      "${role_file}" >&2
}

healthcheck() {
  [[ -r "${role_file}" ]] || return 0 # a CLI container: alive while its process runs
  local role port
  read -r role port <"${role_file}"
  python3 - "${port}" <<'PY' || { printf 'farm-entrypoint: %s on port %s is not healthy\n' "${role}" "${port}" >&2; return 1; }
import sys
import urllib.request

with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=3) as reply:
    sys.exit(0 if reply.status == 200 else 1)
PY
}

main() {
  (($# > 0)) || set -- --help
  local role="$1"
  case "${role}" in
  scheduler)
    shift
    configure_tls
    local dashboard_port="${FARM_PORT_SCHEDULER_DASHBOARD:-8787}"
    record_role scheduler "${dashboard_port}"
    exec dask scheduler \
      --protocol "$(protocol)" \
      --port "${FARM_PORT_SCHEDULER:-8786}" \
      --dashboard-address ":${dashboard_port}" \
      "$@"
    ;;
  worker)
    shift
    configure_tls
    local dashboard_port="${FARM_PORT_WORKER_DASHBOARD:-8788}"
    record_role worker "${dashboard_port}"
    exec dask worker \
      --protocol "$(protocol)" \
      --nworkers 1 \
      --nthreads "${FARM_WORKER_THREADS:-1}" \
      --worker-port "${FARM_PORT_WORKER:-8789}" \
      --nanny-port "${FARM_PORT_NANNY:-8790}" \
      --dashboard-address ":${dashboard_port}" \
      --local-directory "${state_dir}" \
      "$@"
    ;;
  healthcheck)
    healthcheck
    ;;
  *)
    configure_tls
    exec farm "$@"
    ;;
  esac
}

main "$@"
