#!/usr/bin/env bash
# A one-node Slurm on this machine, for test/slurm.test.ts and for trying `tempered slurm`:
#   sudo bash scripts/slurm-local.sh start   # munged, slurmctld, slurmd; node "localhost" with every CPU
#   sudo bash scripts/slurm-local.sh stop    # stops the three daemons this script started
# Needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge) and root. No cgroups:
# proctrack/linuxproc and task/none, so it runs in containers too. State and logs live in
# $SLURM_LOCAL_DIR (default /tmp/tempered-slurm); /etc/slurm/slurm.conf is written (the
# commands read it from there) and the previous one, if any, is kept as slurm.conf.before-tempered.
set -euo pipefail
state=${SLURM_LOCAL_DIR:-/tmp/tempered-slurm}
conf=/etc/slurm/slurm.conf

start() {
  for cmd in munged slurmctld slurmd sbatch; do
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || {
      echo "slurm-local: $cmd not found (apt-get install slurm-wlm munge)" >&2
      exit 1
    }
  done
  mkdir -p "$state"/{ctld,d,log} /etc/slurm /run/munge /var/log/munge /var/lib/munge
  cpus=$(nproc)
  # slurmd -C reports what the node really has; declaring more memory than that drains it.
  memory=$(/usr/sbin/slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  [ -f "$conf" ] && [ ! -f "$conf.before-tempered" ] && cp "$conf" "$conf.before-tempered"
  cat >"$conf" <<EOF
# Written by tempered's scripts/slurm-local.sh: one node, this machine, no cgroups.
ClusterName=tempered-local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# A requeued task starts again at once rather than after the default two minutes.
MinJobAge=300
KillWait=5
NodeName=localhost CPUs=$cpus RealMemory=${memory:-1000} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chmod 0400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || /usr/sbin/munged --force --pid-file="$state/munged.pid"
  /usr/sbin/slurmctld -i
  /usr/sbin/slurmd
  for _ in $(seq 1 30); do
    if sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
      echo "slurm-local: up ($(sinfo -h -o '%N %c CPUs %T'))"
      return 0
    fi
    sleep 1
  done
  echo "slurm-local: the node did not come up; logs in $state/log" >&2
  sinfo >&2 || true
  tail -20 "$state"/log/*.log >&2 || true
  exit 1
}

stop_daemon() {
  local pidfile=$1
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  rm -f "$pidfile"
}

stop() {
  # Jobs still queued or running belong to this throw-away cluster.
  scancel --user="$(id -un)" 2>/dev/null || true
  stop_daemon "$state/slurmd.pid"
  stop_daemon "$state/slurmctld.pid"
  stop_daemon "$state/munged.pid"
  if [ -f "$conf.before-tempered" ]; then mv "$conf.before-tempered" "$conf"; else rm -f "$conf"; fi
  echo "slurm-local: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
