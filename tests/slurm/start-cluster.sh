#!/usr/bin/env bash
# Starts a single-node Slurm cluster for the tests, without systemd: munged, then slurmctld and slurmd, all as the
# current user (root in CI), talking over 127.0.0.1, with their configuration, state and logs under DDVI_SLURM_DIR
# (default /tmp/ddvi-slurm). Needs Debian's slurm-wlm and munge packages. Prints the SLURM_CONF to export; the Slurm
# test finds the cluster through DDVI_SLURM_DIR/slurm.conf. Stop it with tests/slurm/stop-cluster.sh (by PID).
# On failure it prints the daemons' logs and exits non-zero.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${DDVI_SLURM_DIR:-/tmp/ddvi-slurm}"
ctld_port="${DDVI_SLURM_CTLD_PORT:-6817}"
slurmd_port="${DDVI_SLURM_SLURMD_PORT:-6818}"

for command in munged mungekey slurmctld slurmd sinfo sbatch; do
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
    echo "start-cluster: $command not found: install Slurm and MUNGE (Debian: apt-get install slurm-wlm munge)" >&2
    exit 1
  fi
done
export PATH="$PATH:/usr/sbin"

fail() {
  echo "start-cluster: $1" >&2
  for log in "$dir/munge/munged.log" "$dir/slurmctld.log" "$dir/slurmd.log"; do
    [ -f "$log" ] && { echo "--- $log (last 40 lines)" >&2; tail -n 40 "$log" >&2; }
  done
  exit 1
}

# A cluster left over from an earlier run is stopped first.
"$here/stop-cluster.sh" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
chmod 700 "$dir/munge"

host="$(hostname -s)"
cpus="$(nproc)"
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
sed -e "s|@DIR@|$dir|g" -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY@|$memory|g" \
    -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" "$here/slurm.conf.in" > "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"

# MUNGE: a fresh key and a socket of our own, so a system munged (if any) is left alone.
mungekey --create --keyfile "$dir/munge/munge.key" --force >/dev/null 2>&1 || fail "mungekey could not create a key"
munged --force --key-file "$dir/munge/munge.key" --socket "$dir/munge/munge.socket" \
       --pid-file "$dir/munge/munged.pid" --log-file "$dir/munge/munged.log" --seed-file "$dir/munge/munged.seed" \
  || fail "munged did not start"

slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"

# Ready when the node takes jobs.
for _ in $(seq 1 60); do
  state="$(sinfo --noheader --nodes "$host" --format=%t 2>/dev/null | head -n 1 || true)"
  case "$state" in
    idle*|mix*|alloc*) echo "start-cluster: node $host is $state; export SLURM_CONF=$SLURM_CONF"; exit 0 ;;
    drain*|down*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
fail "node $host did not become idle within 60 s (sinfo says: ${state:-nothing})"
