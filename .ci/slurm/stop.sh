#!/usr/bin/env bash
# Stop the CI cluster started by start.sh: only the processes whose ids start.sh recorded in
# $SLURM_CI_STATE/pids (slurmd, slurmctld, munged), newest first; SIGTERM, then SIGKILL after
# 10 s. Jobs still queued or running are cancelled first (scancel), so no job step outlives it.
# Then the link /etc/slurm/slurm.conf -> $SLURM_CI_STATE/slurm.conf is removed.
set -uo pipefail

STATE=${SLURM_CI_STATE:-/tmp/slurm-ci}
PIDS=$STATE/pids
log() { printf '[slurm-ci] %s\n' "$*" >&2; }

if [[ ! -s $PIDS ]]; then
    log "no recorded daemons in $PIDS: nothing to stop"
    exit 0
fi

# A recorded pid is only ours if that process still runs the same program: pids are reused.
ours() { # name pid
    [[ -r /proc/$2/comm ]] && [[ $(cat "/proc/$2/comm") == "$1" ]]
}

# Cancel this cluster's jobs first, so that no job step outlives slurmd.
if [[ -r $STATE/slurm.conf ]] && command -v scancel >/dev/null; then
    export SLURM_CONF=$STATE/slurm.conf
    if [[ -n $(squeue --noheader --states=PENDING,RUNNING,COMPLETING --format=%i 2>/dev/null) ]]; then
        log "cancelling jobs still queued or running"
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 30); do
            [[ -z $(squeue --noheader --states=PENDING,RUNNING,COMPLETING --format=%i 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
fi

mapfile -t entries < <(tac "$PIDS")
for entry in "${entries[@]}"; do
    read -r name pid <<<"$entry"
    if ours "$name" "$pid"; then
        kill -TERM "$pid" 2>/dev/null && log "stopping $name ($pid)"
    fi
done
status=0
for entry in "${entries[@]}"; do
    read -r name pid <<<"$entry"
    for _ in $(seq 100); do ours "$name" "$pid" || break; sleep 0.1; done
    if ours "$name" "$pid"; then
        log "$name ($pid) ignored SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
        ours "$name" "$pid" && { log "$name ($pid) is still running"; status=1; }
    fi
done
if pgrep -x slurmstepd >/dev/null; then
    log "warning: slurmstepd processes are left (jobs that did not end): $(pgrep -x -d ' ' slurmstepd)"
    status=1
fi
# The link start.sh made, and only that.
if [[ $(readlink /etc/slurm/slurm.conf 2>/dev/null || true) == "$STATE/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
fi
((status == 0)) && : >"$PIDS"
exit $status
