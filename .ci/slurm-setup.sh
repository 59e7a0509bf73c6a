#!/usr/bin/env bash
# Start a single-node SLURM cluster on 127.0.0.1 for cascade's tests, without systemd.
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge, writes slurm.conf for one node
# ("localhost", NodeAddr 127.0.0.1) sized from this machine's CPU count and memory, starts munged,
# slurmctld and slurmd directly and waits until `sinfo` shows the node idle. Idempotent: a second
# run while everything is up only checks it. Needs root on Debian 12 (a fresh container is fine).
#
#   .ci/slurm-setup.sh          install if needed, (re)start what is not running, wait for idle
#   .ci/slurm-setup.sh --stop   stop slurmd and slurmctld started by this script (munged keeps running)
#
# Environment:
#   CASCADE_SLURM_DIR      state, spool, logs and pid files (default /var/lib/cascade-slurm)
#   SLURM_CONF             where slurm.conf is written (default /etc/slurm/slurm.conf, which the SLURM
#                          client commands read without any setting)
#   CASCADE_SLURM_TIMEOUT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

SLURM_DIR=${CASCADE_SLURM_DIR:-/var/lib/cascade-slurm}
export SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
TIMEOUT=${CASCADE_SLURM_TIMEOUT:-60}
PACKAGES=(slurmctld slurmd slurm-client munge)
START=$EPOCHREALTIME

say() { printf '[slurm-setup %6.1fs] %s\n' "$(awk -v a="$EPOCHREALTIME" -v b="$START" 'BEGIN{print a-b}')" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() {  # stop_daemon NAME PIDFILE: SIGTERM, then wait up to 15 s for the process to exit
    local name=$1 pidfile=$2 pid
    running "$pidfile" || return 0
    pid=$(cat "$pidfile")
    say "stopping $name (pid $pid)"
    kill "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    die "$name (pid $pid) did not exit after SIGTERM"
}

if [[ ${1:-} == --stop ]]; then
    stop_daemon slurmd "$SLURM_DIR/run/slurmd.pid"
    stop_daemon slurmctld "$SLURM_DIR/run/slurmctld.pid"
    say "stopped"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "run as root (installs packages and starts daemons)"

# 1. Packages (Debian's own; services are not auto-started in containers without systemd).
missing=()
for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then  # keep the packages from starting daemons before slurm.conf exists
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    say "apt-get install --no-install-recommends ${PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    say "installed: $(dpkg-query -W -f='${Package} ${Version}  ' "${PACKAGES[@]}")"
else
    say "packages already installed: ${PACKAGES[*]}"
fi
id slurm >/dev/null 2>&1 || die "the Debian packages did not create the 'slurm' user"

# 2. munge: a key, its directories, and the daemon (run as the munge user).
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munged already running"
else
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# 3. slurm.conf for one node on loopback, sized from this machine (slurmd -C, capped by affinity).
install -d -o slurm -g slurm -m 0755 "$SLURM_DIR/state/slurmctld" "$SLURM_DIR/log" "$SLURM_DIR/run"
install -d -m 0755 "$SLURM_DIR/state/slurmd" "$(dirname "$SLURM_CONF")"
hardware=$(slurmd -C | head -n 1)
cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$hardware")
memory=$(sed -n 's/.*\bRealMemory=\([0-9]*\).*/\1/p' <<<"$hardware")
[[ -n $cpus && -n $memory ]] || die "cannot read CPUs and RealMemory from 'slurmd -C': $hardware"
((cpus <= $(nproc))) || cpus=$(nproc)
say "node: $cpus CPUs, $memory MiB (slurmd -C: $hardware)"
conf=$(cat <<EOF
# Written by cascade's .ci/slurm-setup.sh: one node on 127.0.0.1, no systemd, no cgroups.
ClusterName=cascade-ci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# NoCtldInAddrAny keeps slurmctld itself off 0.0.0.0; NoInAddrAny covers slurmd and the clients.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_DIR/state/slurmctld
SlurmdSpoolDir=$SLURM_DIR/state/slurmd
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
# Per CPU (not per core), so that 1-CPU jobs share a hyper-threaded core on small CI runners.
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=60
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)
if [[ -f $SLURM_CONF && $(cat "$SLURM_CONF") == "$conf" ]]; then
    say "$SLURM_CONF is up to date"
else
    say "writing $SLURM_CONF"
    stop_daemon slurmd "$SLURM_DIR/run/slurmd.pid"
    stop_daemon slurmctld "$SLURM_DIR/run/slurmctld.pid"
    printf '%s\n' "$conf" >"$SLURM_CONF"
fi

# 4. The daemons (they fork into the background themselves).
if running "$SLURM_DIR/run/slurmctld.pid"; then
    say "slurmctld already running (pid $(cat "$SLURM_DIR/run/slurmctld.pid"))"
else
    say "starting slurmctld"
    slurmctld
fi
if running "$SLURM_DIR/run/slurmd.pid"; then
    say "slurmd already running (pid $(cat "$SLURM_DIR/run/slurmd.pid"))"
else
    say "starting slurmd -N localhost"
    slurmd -N localhost
fi

# 5. Wait for the node: idle means it takes jobs. Resume it once if it registered as down or drained.
resumed=0
deadline=$((SECONDS + TIMEOUT))
while :; do
    state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    if [[ $state =~ ^(down|drain|drng) && $resumed -eq 0 ]]; then
        say "node is $state ($(sinfo -h -n localhost -o %E)); resuming it"
        scontrol update nodename=localhost state=resume || true
        resumed=1
    fi
    if ((SECONDS >= deadline)); then
        tail -n 20 "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR/log/slurmd.log" >&2 || true
        die "node not idle after ${TIMEOUT}s (state: '${state:-no answer}')"
    fi
    sleep 0.2
done
say "node idle:"
sinfo
[[ $SLURM_CONF == /etc/slurm/slurm.conf ]] || say "client commands need: export SLURM_CONF=$SLURM_CONF"
