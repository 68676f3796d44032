/* dist — MPI_COMM_WORLD as a k2c_comm (dist.c). The public face is k2c_dist.h; this layer sits beside core and
 * is linked only into programs that run over ranks (the CLI, the MPI tests). */
#ifndef K2C_DIST_INT_H
#define K2C_DIST_INT_H

#include "k2c_dist.h"

#endif
