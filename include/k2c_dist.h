/* k2c — running over MPI ranks (OpenMPI, launched by mpirun). The library (libk2c, libk2c_train) never links
 * MPI: it talks to its peers through a k2c_comm (k2c.h). This small layer (libk2c_dist.a, src/dist/) makes one
 * from MPI_COMM_WORLD. Built without MPI it still links and reports a single process, and refuses to run as
 * one of several ranks (it would otherwise run the whole job N times over).
 *
 *   mpirun -n 2 k2c generate --model DIR ...    expert-parallel inference: rank 0 runs the command
 *   mpirun -n 2 k2c train ...                   data-parallel training: every rank runs the command
 */
#ifndef K2C_DIST_H
#define K2C_DIST_H

#include "k2c.h"

/* Starts MPI when this process was launched by mpirun (OMPI_COMM_WORLD_SIZE / PMIX_RANK set), else does
 * nothing. 0, or -1 with k2c_errmsg() set. */
int k2c_dist_init(int *argc, char ***argv);
/* The ranks of this job, or NULL for a single process (not launched by mpirun, or one rank). */
const k2c_comm *k2c_dist_comm(void);
int k2c_dist_built(void);               /* 1 if this build has MPI */
/* Ends MPI normally (every rank, after its last collective). */
void k2c_dist_finalize(void);
/* The documented fault path: ends every rank of the job with this exit code (MPI_Abort), for a rank that
 * cannot go on while others may be waiting for it. Never returns. A single process just exits. */
_Noreturn void k2c_dist_abort(int code);

#endif
