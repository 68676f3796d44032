/* Thread count for OpenMP kernels and OpenBLAS. */
#include "k2c.h"

#include <cblas.h>
#include <omp.h>

void k2c_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int k2c_get_threads(void) { return omp_get_max_threads(); }
