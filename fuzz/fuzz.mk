# libFuzzer harnesses, one per reader of untrusted bytes (fuzz/fuzz_*.c; see fuzz/README.md).
#   make fuzz [FUZZ_TIME=60] [FUZZ_RUNS=N] [FUZZ_ONLY="config toolparse"]   build, then run each harness FUZZ_TIME
#                                                  seconds (or until N executions, whichever first)
#   make fuzz-build                                           build build-fuzz/fuzz_* only
#   make fuzz-regress                                         run each harness once over its committed corpus
# Seeds are read from fuzz/corpus/NAME; new inputs go to build-fuzz/corpus/NAME only (the committed
# corpus never grows), crashes to build-fuzz/artifacts/ (a failing run prints the
# first error lines and each small crash input in base64, so a CI log alone reproduces it). The library is rebuilt with clang + ASan/UBSan
# + coverage into build-fuzz/; the sources are found wherever they live under src/.
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 60
FUZZ_RSS    ?= 2048
FUZZ_ONLY   ?=
FUZZ_RUNS   ?=
FUZZ_B      := build-fuzz
FUZZ_SRC    := $(sort $(shell find src -name '*.c'))
FUZZ_INC    := -Iinclude -Isrc -Ifuzz -I/usr/include/x86_64-linux-gnu/openblas-openmp
FUZZ_CFLAGS := -DK2C_NO_CLONES -std=c11 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-function -Wno-pass-failed -D_DEFAULT_SOURCE -D_GNU_SOURCE \
               -fopenmp $(FUZZ_INC) -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIBS   := -ljansson -lpcre2-8 -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \
               -lopenblas -lmicrohttpd -lm -lpthread
FUZZ_NAMES  := $(if $(FUZZ_ONLY),$(FUZZ_ONLY),$(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c))))
FUZZ_OBJ    := $(FUZZ_SRC:%.c=$(FUZZ_B)/%.o) $(FUZZ_B)/gen/web_assets.o
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_B)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-regress
fuzz-build: $(FUZZ_BINS)

$(FUZZ_B)/src/%.o: src/%.c $(shell find src include -name '*.h')
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_B)/gen/web_assets.o: web/chat.html scripts/embed.sh
	@mkdir -p $(dir $@)
	bash scripts/embed.sh web/chat.html k2c_web_chat_html > $(FUZZ_B)/gen/web_assets.c
	$(FUZZ_CC) -c $(FUZZ_B)/gen/web_assets.c -o $@

$(FUZZ_B)/libk2c-fuzz.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_B)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h fuzz/fuzz_tok.h $(FUZZ_B)/libk2c-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_B)/libk2c-fuzz.a $(FUZZ_LIBS) -o $@

# One harness at a time, one process each (the machine is shared); a summary line per harness.
fuzz: $(FUZZ_BINS)
	@mkdir -p $(FUZZ_B)/artifacts $(FUZZ_B)/logs; failed=""; \
	for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_B)/corpus/$$n; \
	  dict=""; [ -f fuzz/dict/$$n.dict ] && dict="-dict=fuzz/dict/$$n.dict"; \
	  echo "== fuzz_$$n ($(FUZZ_TIME) s)"; \
	  $(FUZZ_B)/fuzz_$$n -max_total_time=$(FUZZ_TIME) $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS)) -rss_limit_mb=$(FUZZ_RSS) -timeout=20 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_B)/artifacts/$$n- $$dict $(FUZZ_B)/corpus/$$n fuzz/corpus/$$n \
	    >$(FUZZ_B)/logs/$$n.log 2>&1 || { failed="$$failed $$n"; \
	    grep -m4 -E "check failed|ERROR|SUMMARY|runtime error" $(FUZZ_B)/logs/$$n.log; \
	    for a in $(FUZZ_B)/artifacts/$$n-*; do [ -f "$$a" ] && [ $$(stat -c %s "$$a") -le 16384 ] && \
	      echo "$$a (base64): $$(base64 -w0 "$$a")"; done; }; \
	  grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)" $(FUZZ_B)/logs/$$n.log | tr '\n' ' '; echo; \
	done; \
	if [ -n "$$failed" ]; then echo "FUZZ FAILURES:$$failed (see $(FUZZ_B)/logs/ and $(FUZZ_B)/artifacts/)"; exit 1; fi; \
	echo "fuzz: all $(words $(FUZZ_NAMES)) harnesses ran $(FUZZ_TIME) s without a crash"

# Every committed seed and regression input, once (fast; no new inputs written).
fuzz-regress: $(FUZZ_BINS)
	@failed=""; for n in $(FUZZ_NAMES); do \
	  $(FUZZ_B)/fuzz_$$n -runs=0 -rss_limit_mb=$(FUZZ_RSS) fuzz/corpus/$$n >$(FUZZ_B)/regress-$$n.log 2>&1 \
	    && echo "PASS fuzz_regress_$$n" || { echo "FAIL fuzz_regress_$$n: $$(grep -m1 -E 'ERROR|check failed|runtime error' $(FUZZ_B)/regress-$$n.log)"; failed=1; }; \
	done; [ -z "$$failed" ]
