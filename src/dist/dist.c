/* MPI_COMM_WORLD as a k2c_comm. Compiled with -DK2C_MPI (the Makefile adds it when OpenMPI's development files
 * are installed); without it every function reports a single process.
 *
 * Errors: the world communicator returns errors (MPI_ERRORS_RETURN) instead of aborting, so a failed collective
 * becomes a k2c error for the caller; k2c_dist_abort is the one place that ends the job. A peer that dies is
 * noticed by mpirun, which stops every rank (cli/main.c turns that into a message on rank 0). */
#include "dist/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Launched by mpirun (OpenMPI sets OMPI_COMM_WORLD_SIZE; a PMIx launcher sets PMIX_RANK)? */
static int launched_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (s && *s) return atoi(s);
    return getenv("PMIX_RANK") ? 2 : 1;     /* PMIx without the OpenMPI variable: some launcher, size unknown */
}

#ifdef K2C_MPI
#include <limits.h>
#include <mpi.h>

static k2c_comm g_comm;
static int g_started;

static int fail(const char *what, int err) {
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(err, s, &n);
    k2c_seterr("MPI %s on rank %d of %d failed: %.*s", what, g_comm.rank, g_comm.size, n, s);
    return -1;
}

static MPI_Datatype dtype(k2c_comm_type t) {
    switch (t) {
    case K2C_COMM_F32: return MPI_FLOAT;
    case K2C_COMM_F64: return MPI_DOUBLE;
    case K2C_COMM_I32: return MPI_INT32_T;
    default: return MPI_UNSIGNED_CHAR;
    }
}

static size_t tsize(k2c_comm_type t) { return t == K2C_COMM_F64 ? 8 : t == K2C_COMM_U8 ? 1 : 4; }

/* MPI counts are ints: longer buffers go in pieces of 2^30 items. */
enum { PIECE = 1 << 30 };

/* A rank waiting for rank 0 (an expert-parallel rank between requests of an idle server) would spin a core in
 * a blocking MPI_Bcast forever. It waits on a non-blocking one instead: polling flat out for the first 50 ms
 * (the gap between two layers of a token, so decode loses nothing), then sleeping 0.1-1 ms between polls. */
static int wait_polite(MPI_Request *rq) {
    double t0 = MPI_Wtime();
    long ns = 100000;
    for (;;) {
        int done = 0, e = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS) return e;
        if (done) return MPI_SUCCESS;
        if (MPI_Wtime() - t0 > 0.05) {
            struct timespec ts = {0, ns};
            nanosleep(&ts, NULL);
            if (ns < 1000000) ns += ns / 2;
        }
    }
}

static int d_bcast(const k2c_comm *c, void *buf, size_t n, k2c_comm_type t) {
    for (size_t i = 0; i < n; i += PIECE) {
        int k = (int)(n - i < PIECE ? n - i : PIECE), e;
        void *p = (char *)buf + i * tsize(t);
        /* non-blocking on every rank: a blocking and a non-blocking collective never match each other */
        MPI_Request rq;
        e = MPI_Ibcast(p, k, dtype(t), 0, MPI_COMM_WORLD, &rq);
        if (e == MPI_SUCCESS) e = c->rank == 0 ? MPI_Wait(&rq, MPI_STATUS_IGNORE) : wait_polite(&rq);
        if (e != MPI_SUCCESS) return fail("broadcast", e);
    }
    return 0;
}

static int d_reduce(const k2c_comm *c, void *buf, size_t n, k2c_comm_type t, k2c_comm_op op, int root) {
    MPI_Op o = op == K2C_COMM_MAX ? MPI_MAX : MPI_SUM;
    for (size_t i = 0; i < n; i += PIECE) {
        int k = (int)(n - i < PIECE ? n - i : PIECE), e;
        void *p = (char *)buf + i * tsize(t);
        if (root < 0) e = MPI_Allreduce(MPI_IN_PLACE, p, k, dtype(t), o, MPI_COMM_WORLD);
        else e = MPI_Reduce(c->rank == root ? MPI_IN_PLACE : p, p, k, dtype(t), o, root, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) return fail(root < 0 ? "allreduce" : "reduce", e);
    }
    return 0;
}

/* int counts and displacements of a block layout; -1 if a block or the total does not fit an int */
static int int_layout(const k2c_comm *c, const size_t *counts, int *ic, int *id) {
    size_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] > INT_MAX || off > INT_MAX) {
            k2c_seterr("MPI: a block of %zu items at offset %zu is too long for one collective (at most 2^31 - 1)",
                       counts[r], off);
            return -1;
        }
        ic[r] = (int)counts[r];
        id[r] = (int)off;
        off += counts[r];
    }
    return 0;
}

static int blocks(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t, int kind) {
    int *ic = malloc((size_t)c->size * 2 * sizeof *ic), rc = -1, e = MPI_SUCCESS;
    if (!ic) { k2c_seterr("out of memory"); return -1; }
    int *id = ic + c->size, me = c->rank;
    if (int_layout(c, counts, ic, id)) goto done;
    char *mine = (char *)buf + (size_t)id[me] * tsize(t);
    if (kind == 0) {
        /* In place, MPI leaves rank r's sum at the start of buf; it belongs at its own offset. */
        e = MPI_Reduce_scatter(MPI_IN_PLACE, buf, ic, dtype(t), MPI_SUM, MPI_COMM_WORLD);
        if (e == MPI_SUCCESS && id[me]) memmove(mine, buf, (size_t)ic[me] * tsize(t));
    } else if (kind == 1) {
        e = MPI_Allgatherv(MPI_IN_PLACE, 0, dtype(t), buf, ic, id, dtype(t), MPI_COMM_WORLD);
    } else {
        e = me == 0 ? MPI_Gatherv(MPI_IN_PLACE, 0, dtype(t), buf, ic, id, dtype(t), 0, MPI_COMM_WORLD)
                    : MPI_Gatherv(mine, ic[me], dtype(t), NULL, NULL, NULL, dtype(t), 0, MPI_COMM_WORLD);
    }
    if (e != MPI_SUCCESS) { fail(kind == 0 ? "reduce-scatter" : kind == 1 ? "allgather" : "gather", e); goto done; }
    rc = 0;
done:
    free(ic);
    return rc;
}

static int d_reduce_scatter(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t) {
    return blocks(c, buf, counts, t, 0);
}
static int d_allgather(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t) {
    return blocks(c, buf, counts, t, 1);
}
static int d_gather(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t) {
    return blocks(c, buf, counts, t, 2);
}

int k2c_dist_init(int *argc, char ***argv) {
    if (g_started || launched_size() <= 1) return 0;
    int have = 0, e;
    /* SERIALIZED: the server calls into the model from its scheduler thread, never from two threads at once */
    if ((e = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &have)) != MPI_SUCCESS) return fail("init", e);
    g_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_comm.size);
    if (have < MPI_THREAD_SERIALIZED) {
        k2c_seterr("this MPI library offers thread level %d, k2c needs MPI_THREAD_SERIALIZED", have);
        return -1;
    }
    g_comm.bcast = d_bcast;
    g_comm.reduce = d_reduce;
    g_comm.reduce_scatter = d_reduce_scatter;
    g_comm.allgather = d_allgather;
    g_comm.gather = d_gather;
    return 0;
}

const k2c_comm *k2c_dist_comm(void) { return g_started && g_comm.size > 1 ? &g_comm : NULL; }
int k2c_dist_built(void) { return 1; }

void k2c_dist_finalize(void) {
    if (g_started) MPI_Finalize();
    g_started = 0;
}

_Noreturn void k2c_dist_abort(int code) {
    if (g_started) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code);
}

#else  /* built without MPI */

int k2c_dist_init(int *argc, char ***argv) {
    (void)argc; (void)argv;
    if (launched_size() > 1) {
        k2c_seterr("this k2c was built without MPI, but mpirun started it as one of several ranks (each would run "
                   "the whole job): install libopenmpi-dev (scripts/install-deps.sh) and rebuild");
        return -1;
    }
    return 0;
}
const k2c_comm *k2c_dist_comm(void) { return NULL; }
int k2c_dist_built(void) { return 0; }
void k2c_dist_finalize(void) {}
_Noreturn void k2c_dist_abort(int code) { exit(code); }

#endif
