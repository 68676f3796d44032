# Sourced by the MPI tests: how they start ranks. Ranks talk over shared memory (vader) and loopback only
# (self,vader: no TCP between ranks; the launcher's own channel on lo), never bound to cores (a shared CI
# machine), oversubscribed (more ranks than cores), and allowed as root (CI containers).
export OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none    # CMA needs ptrace rights containers often lack
export OMPI_MCA_oob_tcp_if_include=lo
export OMPI_MCA_hwloc_base_binding_policy=none
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
MPIRUN="mpirun --oversubscribe --bind-to none"
[ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
# Sanitizer builds: MPI_Init's own allocations are not leaks of ours.
[ -n "${K2C_SANITIZE:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# mpi_ready: 0 if this build and machine can run MPI tests, else prints why
mpi_ready() {
  command -v mpirun >/dev/null 2>&1 || { echo "mpirun not installed (scripts/install-deps.sh installs openmpi-bin)"; return 1; }
  [ "$("${K2C_TESTS:-build/tests}/mpi_golden" --built 2>/dev/null)" = mpi ] || { echo "built without MPI (libopenmpi-dev missing or MPI=0)"; return 1; }
  return 0
}
