#!/usr/bin/env bash
# A single-node SLURM on this machine, for CI and for developers (docs/guide-operators.md).
#
#   sudo deploy/slurm/local-slurm.sh start    # install slurm-wlm + munge if missing, configure, start, wait for idle
#   sudo deploy/slurm/local-slurm.sh status   # daemons and node state; exit 0 only when the node takes jobs
#   sudo deploy/slurm/local-slurm.sh stop     # cancel jobs, stop slurmd, slurmctld, munged
#   sudo deploy/slurm/local-slurm.sh restart
#
# One node named after `hostname -s`, one partition `debug` (Default=YES). The daemons run as plain
# background processes started by this script (no systemd needed): munged as user munge (as
# Debian's unit does), slurmctld and slurmd as root. Everything is idempotent: `start` on a healthy
# cluster only checks it, `start` after a crash starts what is missing.
#
# Environment:
#   LOCAL_SLURM_CPUS=N        CPUs the node offers (default: nproc)
#   LOCAL_SLURM_MEMORY_MB=M   RealMemory of the node (default: 90% of MemAvailable)
#   LOCAL_SLURM_FORCE=1       overwrite an /etc/slurm/slurm.conf this script did not write
#   LOCAL_SLURM_TIMEOUT=S     seconds to wait for the node to become idle (default 60)
#
# Debian 12 (bookworm) ships SLURM 22.05; tested there. Must run as root.
set -Eeuo pipefail
trap 'printf "local-slurm: ERROR: line %s failed: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

readonly CONF_DIR=/etc/slurm
readonly CONF=${CONF_DIR}/slurm.conf
readonly MARKER="# written by deploy/slurm/local-slurm.sh"
readonly LOG_DIR=/var/log/slurm
readonly RUN_DIR=/run/slurm
readonly CTLD_PID=${RUN_DIR}/slurmctld.pid
readonly SLURMD_PID=${RUN_DIR}/slurmd.pid
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge
readonly MUNGE_PID=${MUNGE_RUN}/munged.pid
readonly PARTITION=debug
NODE=$(hostname -s)
readonly NODE
readonly TIMEOUT_S=${LOCAL_SLURM_TIMEOUT:-60}

log() { printf 'local-slurm: %s\n' "$*"; }
die() {
    printf 'local-slurm: ERROR: %s\n' "$*" >&2
    exit 1
}

# proc_alive PID NAME: PID is a live (not zombie) process whose command is NAME. A killed daemon
# whose parent does not reap it stays a zombie, and a pid may be reused: neither counts.
proc_alive() {
    local pid=$1 name=$2 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# pid_of PIDFILE NAME: print the pid in PIDFILE if that process is NAME and alive; else fail.
pid_of() {
    local pid
    pid=$(cat -- "$1" 2>/dev/null) || return 1
    proc_alive "$pid" "$2" || return 1
    echo "$pid"
}

pid_alive() { pid_of "$1" "$2" >/dev/null; }

show_log_tail() {
    local file=$1
    if [[ -r $file ]]; then
        printf -- '--- last lines of %s ---\n' "$file" >&2
        tail -n 15 "$file" >&2
    fi
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo $0 $*)"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "SLURM is not installed and apt-get is missing: install slurmctld, slurmd, slurm-client and munge with your package manager"
    log "installing ${missing[*]} (apt-get) ..."
    # Keep the packages' maintainer scripts from starting daemons with their default config:
    # we start them ourselves once slurm.conf is written. policy-rc.d exit 101 = "action forbidden".
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null
    } || rc=$?
    ((own_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc); check network access to the Debian mirror"
    # slurm-wlm is the metapackage of exactly these; nothing else is needed for one node.
}

# Node size: CPUs from nproc, RealMemory a bit below what is available now, so that slurmd never
# reports less memory than configured (which would drain the node).
node_cpus() { echo "${LOCAL_SLURM_CPUS:-$(nproc)}"; }
node_memory_mb() {
    if [[ -n ${LOCAL_SLURM_MEMORY_MB:-} ]]; then
        echo "$LOCAL_SLURM_MEMORY_MB"
        return
    fi
    local avail_kb
    avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    echo $((avail_kb * 9 / 10 / 1024))
}

write_config() {
    if [[ -e $CONF ]] && ! grep -qF "$MARKER" "$CONF" && [[ ${LOCAL_SLURM_FORCE:-0} != 1 ]]; then
        die "$CONF exists and was not written by this script; refusing to overwrite it (LOCAL_SLURM_FORCE=1 to overwrite)"
    fi
    local cpus mem_mb
    cpus=$(node_cpus)
    mem_mb=$(node_memory_mb)
    ((mem_mb >= 1024)) || die "only ${mem_mb} MB of memory available for the node; need at least 1024"
    mkdir -p "$CONF_DIR"
    cat >"$CONF" <<EOF
$MARKER on $(date -u +%Y-%m-%dT%H:%M:%SZ)
# A single-node SLURM for CI and development. Not for production use.
ClusterName=farm-local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
# No cgroups: linuxproc tracks a job's processes by parent pid and works in containers and VMs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Containers often forbid raising rlimits: do not copy the submitter's limits into jobs.
PropagateResourceLimits=NONE
SchedulerType=sched/backfill
# Schedule a batch job as soon as it is submitted (default: up to 3 s later, for high throughput).
SchedulerParameters=batch_sched_delay=0
# Allocate single CPUs and memory; a job without --mem gets 1 GiB per CPU, not the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
# The node is whatever this file says (CPUs only, no sockets/cores/threads): a hyper-threaded
# machine offers every logical CPU, and a node that reports a different topology is not drained.
SlurmdParameters=config_overrides
# A node that was down comes back by itself as soon as slurmd registers.
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Fast turnover for tests: cancelled jobs are killed after 5 s, finished ones forgotten after 30 s.
KillWait=5
MinJobAge=30
InactiveLimit=0
SlurmdTimeout=120
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
    log "wrote $CONF: node ${NODE}, ${cpus} CPUs, ${mem_mb} MB, partition ${PARTITION}"
}

# srun and slurmstepd look the node's name up; a fresh VM or container may not resolve its own.
ensure_hostname_resolves() {
    getent hosts "$NODE" >/dev/null && return 0
    log "${NODE} does not resolve; adding '127.0.0.1 ${NODE}' to /etc/hosts"
    printf '127.0.0.1\t%s\n' "$NODE" >>/etc/hosts
}

start_munge() {
    if pid_alive "$MUNGE_PID" munged; then
        return 0
    fi
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    if [[ ! -s $MUNGE_KEY ]]; then
        log "generating $MUNGE_KEY"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    # munged refuses a socket dir left by a crashed run only if the socket is live; clear stale ones.
    rm -f "$MUNGE_RUN"/munge.socket.2 "$MUNGE_RUN"/munge.socket.2.lock "$MUNGE_PID"
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" ||
        {
            show_log_tail /var/log/munge/munged.log
            die "munged did not start"
        }
    local i
    for ((i = 0; i < 50; i++)); do
        munge -n </dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    show_log_tail /var/log/munge/munged.log
    die "munged is not answering (munge -n | unmunge failed)"
}

start_slurm_daemons() {
    install -d -m 0755 "$RUN_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    if ! pid_alive "$CTLD_PID" slurmctld; then
        # -c: start from a clean state (no jobs or node states left from an earlier run).
        slurmctld -c -f "$CONF" || {
            show_log_tail "$LOG_DIR/slurmctld.log"
            die "slurmctld did not start"
        }
    fi
    if ! pid_alive "$SLURMD_PID" slurmd; then
        slurmd -f "$CONF" -N "$NODE" || {
            show_log_tail "$LOG_DIR/slurmd.log"
            die "slurmd did not start"
        }
    fi
}

node_state() { sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n 1; }

wait_for_idle() {
    local state="" deadline=$((SECONDS + TIMEOUT_S)) resumed=0
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        case $state in
        idle | mix | alloc | comp) return 0 ;;
        *drain* | drng | down* | fail*)
            if ((!resumed)); then
                log "node ${NODE} is '${state}'; resuming it"
                scontrol update nodename="$NODE" state=resume || true
                resumed=1
            fi
            ;;
        esac
        sleep 0.5
    done
    show_log_tail "$LOG_DIR/slurmctld.log"
    show_log_tail "$LOG_DIR/slurmd.log"
    scontrol show node "$NODE" >&2 || true
    die "node ${NODE} is '${state:-unknown}' after ${TIMEOUT_S} s, not idle"
}

healthy() {
    pid_alive "$MUNGE_PID" munged && pid_alive "$CTLD_PID" slurmctld &&
        pid_alive "$SLURMD_PID" slurmd && [[ $(node_state || true) =~ ^(idle|mix|alloc|comp)$ ]]
}

cmd_start() {
    require_root start
    local t0=$SECONDS
    install_packages
    if healthy; then
        log "already running: node ${NODE} is $(node_state) (partition ${PARTITION})"
        return 0
    fi
    # Rewrite the config only when slurmctld is not running, so a live controller and the file agree.
    if ! pid_alive "$CTLD_PID" slurmctld; then
        write_config
    fi
    ensure_hostname_resolves
    start_munge
    start_slurm_daemons
    wait_for_idle
    log "ready in $((SECONDS - t0)) s: node ${NODE} is $(node_state) (partition ${PARTITION})"
}

# stop_pid PIDFILE NAME: TERM the daemon, wait up to 10 s, then KILL it.
stop_pid() {
    local pidfile=$1 name=$2 pid i
    pid=$(pid_of "$pidfile" "$name") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        proc_alive "$pid" "$name" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) ignored TERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_stop() {
    require_root stop
    if pid_alive "$CTLD_PID" slurmctld; then
        local jobs=() i
        mapfile -t jobs < <(squeue -h -o %i 2>/dev/null || true)
        if ((${#jobs[@]} > 0)); then
            log "cancelling jobs: ${jobs[*]}"
            scancel --full "${jobs[@]}" 2>/dev/null || true
            for ((i = 0; i < 100; i++)); do
                [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
                sleep 0.1
            done
        fi
    fi
    stop_pid "$SLURMD_PID" slurmd
    stop_pid "$CTLD_PID" slurmctld
    stop_pid "$MUNGE_PID" munged
    log "stopped"
}

cmd_status() {
    local name pidfile pid rc=0
    for name in munged slurmctld slurmd; do
        case $name in
        munged) pidfile=$MUNGE_PID ;;
        slurmctld) pidfile=$CTLD_PID ;;
        slurmd) pidfile=$SLURMD_PID ;;
        esac
        if pid=$(pid_of "$pidfile" "$name"); then
            printf '%-10s running (pid %s)\n' "$name" "$pid"
        else
            printf '%-10s not running\n' "$name"
            rc=1
        fi
    done
    if command -v sinfo >/dev/null && pid_alive "$CTLD_PID" slurmctld; then
        sinfo -N -o '%N %P %t %c %m' || rc=1
        [[ $(node_state || true) =~ ^(idle|mix|alloc|comp)$ ]] || rc=1
    fi
    return $rc
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
    cmd_stop
    cmd_start
    ;;
status)
    rc=0
    cmd_status || rc=$?
    exit "$rc"
    ;;
*)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
