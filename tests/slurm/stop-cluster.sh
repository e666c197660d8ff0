#!/usr/bin/env bash
# Stops the test cluster that tests/slurm/start-cluster.sh started: slurmd, slurmctld and munged, by the PIDs in
# their pid files under DDVI_SLURM_DIR (default /tmp/ddvi-slurm); waits up to 10 s for each, then kills it.
set -uo pipefail
dir="${DDVI_SLURM_DIR:-/tmp/ddvi-slurm}"
for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
done
echo "stop-cluster: stopped"
