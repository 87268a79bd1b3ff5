#!/usr/bin/env bash
# ci-slurm.sh: CI's Slurm. Installs Debian's slurm-wlm and munge (apt-get, as root), so
# that tests/e2e_slurm.sh, run by `make test`, starts its own one-node cluster on
# localhost (its own munge key and socket, slurm.conf, free ports), runs a sweep as a job
# array on it and tears it down. Nothing is configured or started here: the packages'
# own services, if the machine starts them, are not used by the test.
# Opt out with RB_SLURM=0; without root or apt-get it installs nothing and says so (the test
# then skips, naming what is missing). .ci/run calls it once, before `make test`.
set -euo pipefail
if [ "${RB_SLURM:-1}" = 0 ]; then
  echo "ci-slurm.sh: RB_SLURM=0: Slurm not installed; tests/e2e_slurm.sh will skip"
  exit 0
fi
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
   && command -v sbatch >/dev/null; then
  echo "ci-slurm.sh: ✓ slurm-wlm and munge already installed ($(slurmd -V))"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ci-slurm.sh: ✗ needs root and apt-get to install slurm-wlm and munge; tests/e2e_slurm.sh will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
echo "ci-slurm.sh: ✓ installed slurm-wlm and munge ($(slurmd -V))"
