#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for trying (and testing) nexusml's
# Slurm executor: `scripts/slurm-local.sh up` installs Debian's slurm-wlm and munge if
# needed, writes a one-node slurm.conf for 127.0.0.1 (proctrack/linuxproc, task/none,
# no accounting), starts munged, slurmctld and slurmd, and waits until the node is idle.
# `scripts/slurm-local.sh down` stops the three daemons by PID. Needs root.
set -euo pipefail

state=${SLURM_LOCAL_STATE:-/var/lib/nexusml-slurm}
conf_dir=/etc/slurm
pids="$state/pids"

up() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
  mkdir -p "$state"/{ctld,spool,log} "$conf_dir" /run/munge /var/log/munge /var/lib/munge /etc/munge
  : > "$pids"
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chmod 700 /etc/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  chmod 755 /run/munge
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$conf_dir/slurm.conf" <<CONF
ClusterName=nexusml-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=300
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  munged --force --pid-file="$state/munged.pid" --socket=/run/munge/munge.socket.2
  cat "$state/munged.pid" >> "$pids"
  slurmctld -i
  slurmd
  for _ in $(seq 1 100); do
    [ -s "$state/slurmctld.pid" ] && [ -s "$state/slurmd.pid" ] && break
    sleep 0.1
  done
  cat "$state/slurmctld.pid" "$state/slurmd.pid" >> "$pids"
  for _ in $(seq 1 120); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then
      echo "slurm is up: $(sinfo -h -o '%N %c CPUs %m MB %t')"
      return 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "slurm did not become idle; logs in $state/log" >&2
  sinfo >&2 || true
  return 1
}

down() {
  [ -f "$pids" ] || { echo "no local cluster was started (no $pids)"; return 0; }
  while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done < "$pids"
  for _ in $(seq 1 50); do
    alive=0
    while read -r pid; do
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done < "$pids"
    [ $alive = 0 ] && break
    sleep 0.1
  done
  rm -f "$pids"
  echo "slurm is down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
