# Sourced by .ci/run: starts a throwaway single-node Slurm (munged,
# slurmctld, slurmd; no systemd) and exports SLURM_CONF, which sbatch,
# squeue and scancel read. slurm_stop stops it and removes its files; a
# trap calls it when the sourcing shell exits, also after a failure.
# Slurm 22.05 has no auth/slurm: munge is required, and munged refuses a
# socket folder that is not mode 755. No cgroups here: processes are
# tracked by their parents, and no accounting runs (poll squeue, not
# sacct).
slurm_started=$(date +%s)
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 ||
  ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
fi
slurm_dir=$(mktemp -d /tmp/thaw-slurm.XXXXXX)
chmod 755 "$slurm_dir"
mkdir -p "$slurm_dir/munge" "$slurm_dir/state" "$slurm_dir/spool"
# slurm_stop returns once Slurm and everything it started are gone, not
# when they were asked to go. A job step's daemon (slurmstepd) outlives a
# killed slurmd and ignores SIGTERM, so the jobs are cancelled and waited
# for first, then the daemons stop, then any step daemon left is killed
# and waited for.
slurm_stop() {
  [ -n "${slurm_dir:-}" ] || return 0
  local f i p pids=()
  squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null || true
  for i in $(seq 100); do
    [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
    sleep 0.1
  done
  for f in slurmd slurmctld munge/munged; do
    if [ -s "$slurm_dir/$f.pid" ]; then
      pids+=("$(cat "$slurm_dir/$f.pid")")
      kill "${pids[-1]}" 2>/dev/null || true
    fi
  done
  for p in "${pids[@]}"; do
    for i in $(seq 150); do
      kill -0 "$p" 2>/dev/null || continue 2
      sleep 0.1
    done
    echo "slurm_stop: pid $p still runs after 15 s; killing it" >&2
    kill -9 "$p" 2>/dev/null || true
  done
  pkill -9 -x slurmstepd 2>/dev/null || true
  for i in $(seq 100); do
    pgrep -x slurmstepd >/dev/null || break
    sleep 0.1
  done
  rm -rf "$slurm_dir"
  slurm_dir=
}
# Keep whatever exit trap is set already (the PostgreSQL one).
slurm_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
trap "slurm_stop; $slurm_prev_trap" EXIT

dd if=/dev/urandom bs=1024 count=1 of="$slurm_dir/munge/munge.key" 2>/dev/null
chown -R munge: "$slurm_dir/munge"
chmod 755 "$slurm_dir/munge"
chmod 400 "$slurm_dir/munge/munge.key"
runuser -u munge -- munged --key-file="$slurm_dir/munge/munge.key" --socket="$slurm_dir/munge/munge.sock" \
  --log-file="$slurm_dir/munge/munged.log" --pid-file="$slurm_dir/munge/munged.pid" --seed-file="$slurm_dir/munge/munged.seed"

# Two free ports, Slurm's own unless something listens there.
slurm_port=6817
while (exec 3<>"/dev/tcp/127.0.0.1/$slurm_port") 2>/dev/null ||
  (exec 3<>"/dev/tcp/127.0.0.1/$((slurm_port + 1))") 2>/dev/null; do slurm_port=$((slurm_port + 2)); done
slurm_host=$(hostname -s)
# The node as slurmd measures it: its CPUs, cores and memory.
slurm_node=$(slurmd -C | head -n 1 | sed -E "s/^NodeName=[^ ]+/NodeName=$slurm_host NodeAddr=127.0.0.1/")
export SLURM_CONF="$slurm_dir/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=thawci
SlurmctldHost=$slurm_host(127.0.0.1)
SlurmctldPort=$slurm_port
SlurmdPort=$((slurm_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$slurm_dir/munge/munge.sock
StateSaveLocation=$slurm_dir/state
SlurmdSpoolDir=$slurm_dir/spool
SlurmctldPidFile=$slurm_dir/slurmctld.pid
SlurmdPidFile=$slurm_dir/slurmd.pid
SlurmctldLogFile=$slurm_dir/slurmctld.log
SlurmdLogFile=$slurm_dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=30
$slurm_node State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -i -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -qx idle && break
  sleep 0.5
done
if ! sinfo -h -o %t 2>/dev/null | grep -qx idle; then
  echo "Slurm did not come up:"
  sinfo 2>&1 || true
  tail -n 20 "$slurm_dir/slurmctld.log" "$slurm_dir/slurmd.log" "$slurm_dir/munge/munged.log" 2>/dev/null || true
  exit 1
fi
echo "Slurm up (node $slurm_host, port $slurm_port) in $(($(date +%s) - slurm_started)) s"
