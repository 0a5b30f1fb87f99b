#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost, in a directory of its own (for tests/slurm and
# for trying `tessera submit` by hand). Debian's slurm-wlm 22.05 and munge; no accounting
# database, no cgroups. Nothing outside DIR is written or read apart from the programs.
#
#   tests/slurm/local_slurm.sh start [DIR] [--owner PID]
#                                            start munged, slurmctld and slurmd; print DIR
#                                            (a new temporary directory when DIR is not given).
#                                            With --owner, a watcher stops the cluster as soon
#                                            as process PID is gone (even if it was SIGKILLed)
#   tests/slurm/local_slurm.sh stop DIR      stop exactly the daemons that `start DIR` started
#                                            (their pids are in DIR/pids), then leave DIR alone
#   source DIR/env.sh                        point sbatch/squeue/scontrol/srun at this cluster
#
# The daemons run as root (SlurmUser=root) when started by root; as another user, munged and
# the Slurm daemons run as that user (jobs then run as that user too).
set -euo pipefail

usage() {
  echo "usage: $0 start [DIR] [--owner PID] | stop DIR" >&2
  exit 2
}

# Prints a TCP port that nothing listens on now (the kernel's pick for port 0).
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits up to $2 seconds for `$1` (a command string) to succeed.
wait_for() {
  local what=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    if eval "$what" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Is process $1 alive and still the program named $2 (not a later process that got its pid)?
is_ours() {
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/comm" && "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]]
}

# Stops the processes DIR/pids lists (one "program pid" a line), newest first: SIGTERM, up to
# 10 s for each to exit, then SIGKILL. Only these pids are signalled, and only while they
# still run the program recorded for them; the calling process itself is skipped.
stop_cluster() {
  local dir=$1
  [[ -f "$dir/pids" ]] || return 0
  local lines name pid i line jobs
  # Jobs still queued or running on this cluster (a test that failed half-way) are cancelled
  # through Slurm first: their slurmstepd and tessera processes would outlive slurmd.
  if [[ -f "$dir/slurm.conf" ]] && grep -q '^slurmctld ' "$dir/pids"; then
    jobs=$(SLURM_CONF="$dir/slurm.conf" timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [[ -n "${jobs// /}" ]]; then
      # shellcheck disable=SC2086
      SLURM_CONF="$dir/slurm.conf" timeout 10 scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 200; i++)); do
        [[ -z "$(SLURM_CONF="$dir/slurm.conf" timeout 5 squeue -h -o %A 2>/dev/null)" ]] && break
        sleep 0.1
      done
    fi
  fi
  mapfile -t lines < <(tac "$dir/pids")
  for line in "${lines[@]}"; do
    read -r name pid <<<"$line"
    [[ "$pid" == "$BASHPID" ]] && continue
    if is_ours "$pid" "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        is_ours "$pid" "$name" || break
        sleep 0.1
      done
      if is_ours "$pid" "$name"; then
        echo "local_slurm: $name (pid $pid) did not stop on SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  done
  rm -f "$dir/pids"
}

start_cluster() {
  local dir=${1:-} owner=${2:-}
  if [[ -z "$dir" ]]; then dir=$(mktemp -d /tmp/tessera-slurm.XXXXXX); fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/pids" ]]; then
    echo "local_slurm: $dir/pids exists: a cluster may be running there (stop it first)" >&2
    return 1
  fi
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  chmod 700 "$dir/munge"
  : >"$dir/pids"

  local host user
  host=$(hostname -s)
  user=$(id -un)

  # munge: our own key, socket, pid, log and seed files. --force: the directories under /tmp
  # fail munged's ownership/permission checks (sticky world-writable parents).
  local munge_key="$dir/munge/munge.key" munge_socket="$dir/munge/munge.socket"
  if command -v mungekey >/dev/null; then
    mungekey --create --force --keyfile="$munge_key" >/dev/null
  else
    dd if=/dev/urandom of="$munge_key" bs=1 count=1024 status=none
  fi
  chmod 400 "$munge_key"
  munged --foreground --force --key-file="$munge_key" --socket="$munge_socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" </dev/null >>"$dir/log/munged.out" 2>&1 &
  echo "munged $!" >>"$dir/pids"
  if ! wait_for "[[ -S '$munge_socket' ]] && munge --socket='$munge_socket' -n | unmunge --socket='$munge_socket'" 20; then
    echo "local_slurm: munged did not start; see $dir/log/munged.log:" >&2
    tail -n 20 "$dir/log/munged.log" "$dir/log/munged.out" >&2 || true
    stop_cluster "$dir"
    return 1
  fi

  local ctld_port slurmd_port cpus memory_mb
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  while [[ "$slurmd_port" == "$ctld_port" ]]; do slurmd_port=$(free_port); done
  cpus=$(nproc)
  # What Slurm may schedule: 90% of the machine's memory, in MB.
  memory_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)

  cat >"$dir/slurm.conf" <<EOF
# Single-node test cluster written by tests/slurm/local_slurm.sh; every path is in $dir.
ClusterName=tessera-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$munge_socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# Finished jobs stay visible to scontrol for 10 minutes (there is no accounting database).
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  : >"$dir/plugstack.conf"
  mkdir -p "$dir/spool/$host"

  cat >"$dir/env.sh" <<EOF
# source this file to use the test cluster in $dir
export SLURM_CONF=$dir/slurm.conf
EOF
  export SLURM_CONF="$dir/slurm.conf"

  slurmctld -D -f "$dir/slurm.conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
  echo "slurmctld $!" >>"$dir/pids"
  if ! wait_for "scontrol ping | grep -q UP" 30; then
    echo "local_slurm: slurmctld did not answer; see $dir/log/slurmctld.log:" >&2
    tail -n 30 "$dir/log/slurmctld.log" "$dir/log/slurmctld.out" >&2 || true
    stop_cluster "$dir"
    return 1
  fi

  slurmd -D -f "$dir/slurm.conf" -N "$host" </dev/null >>"$dir/log/slurmd.out" 2>&1 &
  echo "slurmd $!" >>"$dir/pids"
  if ! wait_for "sinfo -h -N -n '$host' -o %t | grep -Eq '^(idle|mix|alloc)'" 60; then
    echo "local_slurm: node $host did not become idle; see $dir/log/slurmd.log:" >&2
    sinfo -N >&2 || true
    tail -n 30 "$dir/log/slurmd.log" "$dir/log/slurmd.out" >&2 || true
    stop_cluster "$dir"
    return 1
  fi
  if [[ -n "$owner" ]]; then
    # The watcher: a subshell polling the owner once a second; when the owner is gone (even
    # killed with SIGKILL, so that its EXIT trap never ran) it stops the cluster. A `stop`
    # stops the watcher first (it is the newest entry).
    (
      trap - EXIT
      while kill -0 "$owner" 2>/dev/null && [[ -f "$dir/pids" ]]; do sleep 1; done
      stop_cluster "$dir"
    ) </dev/null >>"$dir/log/watcher.out" 2>&1 &
    echo "bash $!" >>"$dir/pids"
  fi
  echo "$dir"
}

case "${1:-}" in
  start)
    shift
    dir="" owner=""
    while (($#)); do
      case "$1" in
        --owner)
          [[ "${2:-}" =~ ^[0-9]+$ ]] || usage
          owner=$2
          shift 2
          ;;
        -*) usage ;;
        *)
          [[ -z "$dir" ]] || usage
          dir=$1
          shift
          ;;
      esac
    done
    start_cluster "$dir" "$owner"
    ;;
  stop)
    (($# == 2)) || usage
    [[ -d "$2" ]] || { echo "local_slurm: no directory $2" >&2; exit 1; }
    stop_cluster "$(cd "$2" && pwd)"
    ;;
  *) usage ;;
esac
