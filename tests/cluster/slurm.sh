#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the cluster test (root on Debian).
#   slurm.sh start STATE_DIR   install slurm-wlm + munge if missing, configure, start munged/slurmctld/slurmd,
#                              wait until the node is idle; pids go to STATE_DIR/pids
#   slurm.sh stop STATE_DIR    stop exactly the daemons that `start` started (by pid), and remove the
#                              /etc/slurm/slurm.conf that `start` wrote
set -euo pipefail
action=$1
state=$(realpath -m "$2")
mkdir -p "$state"

start() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$state/apt.log" 2>&1 || {
      apt-get update -q >>"$state/apt.log" 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >>"$state/apt.log" 2>&1
    }
  fi
  # munge: a fresh key of our own, and a daemon with its own socket so a system munged is left alone
  mkdir -p "$state/munge"
  dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$state/munge/munge.key"
  munged --force --key-file="$state/munge/munge.key" --socket="$state/munge/socket" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" --seed-file="$state/munge/seed"
  echo "munged $(cat "$state/munge/munged.pid")" >"$state/pids"

  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10))
  mkdir -p "$state/spool/ctld" "$state/spool/d" "$state/log"
  cat >"$state/slurm.conf" <<CONF
ClusterName=chaosgrid
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$state/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=chaosgrid Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  # Job steps (srun inside a job) find the configuration only at the standard path, not via SLURM_CONF.
  if [ ! -e /etc/slurm/slurm.conf ]; then
    mkdir -p /etc/slurm
    cp "$state/slurm.conf" /etc/slurm/slurm.conf
    touch "$state/created-etc-conf"
  elif ! cmp -s "$state/slurm.conf" /etc/slurm/slurm.conf; then
    echo "/etc/slurm/slurm.conf exists and is not ours; not touching it" >&2
    return 1
  fi
  export SLURM_CONF=/etc/slurm/slurm.conf
  slurmctld -i
  slurmd
  for _ in $(seq 50); do
    [ -s "$state/slurmctld.pid" ] && [ -s "$state/slurmd.pid" ] && break
    sleep 0.2
  done
  echo "slurmctld $(cat "$state/slurmctld.pid")" >>"$state/pids"
  echo "slurmd $(cat "$state/slurmd.pid")" >>"$state/pids"
  for _ in $(seq 100); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qx idle; then
      echo "SLURM up: $(sinfo -h -o '%P %D %t %c CPUs %m MB')"
      return 0
    fi
    sleep 0.3
  done
  echo "SLURM did not come up; logs in $state/log" >&2
  sinfo >&2 || true
  tail -20 "$state/log/"*.log >&2 || true
  return 1
}

stop() {
  [ -f "$state/pids" ] || return 0
  tac "$state/pids" | while read -r name pid; do
    kill "$pid" 2>/dev/null && echo "stopped $name ($pid)" || true
  done
  sleep 1
  tac "$state/pids" | while read -r _ pid; do kill -9 "$pid" 2>/dev/null || true; done
  rm -f "$state/pids"
  if [ -f "$state/created-etc-conf" ]; then
    rm -f /etc/slurm/slurm.conf "$state/created-etc-conf"
  fi
}

"$action"
