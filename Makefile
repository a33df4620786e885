# lowbit: plain GNU Makefile. It downloads nothing, except that a build as
# root on Debian installs the two libraries the tokenizer links when their
# headers are missing (apt-get install libpcre2-dev libutf8proc-dev).
#   make            library (static + shared) and the lowbit CLI
#   make test       build and run every test program; ends with "N passed, N failed"
#   make asan/ubsan the tests under AddressSanitizer / UndefinedBehaviorSanitizer
#   make sanitize   clang: AddressSanitizer + every UBSan check in one build (what CI runs)
#   make tsan       test_threads and test_api under ThreadSanitizer
#   make ubsan-clang the tests under clang's UBSan (float-to-int overflow too)
#   make fuzz       every fuzz target under libFuzzer, FUZZ_SECONDS each (docs/fuzzing.md)
#   make bench      run the benchmarks under bench/
#   make install PREFIX=/usr/local
CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN     = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes $(EXTRA_WARN)
BASEFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread -Iinclude -Isrc $(WARN)
LDLIBS   = -lpcre2-8 -lutf8proc -lm -pthread
# PCRE2 matches tokenizer Split patterns; utf8proc does NFC/NFKC/NFD/NFKD.
DEB_PKGS = libpcre2-dev libutf8proc-dev
VERSION  = 0.1.0

# ISA variants are compiled with per-file flags and chosen at run time, so the
# binary runs on any x86-64 (reference path) without -march=native.
AVX2_FLAGS   = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mavx2 -mfma -mf16c

LIB_SRC   := $(sort $(wildcard src/*/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz_*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TESTS     := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZERS   := $(FUZZ_SRC:tests/%.c=$(BUILD)/tests/%)

# seed corpora made with the CLI from the real models (tests/fuzz_corpus.sh)
CORPUS    := $(BUILD)/fuzz-corpus/.done

STATIC = $(BUILD)/liblowbit.a
SHARED = $(BUILD)/liblowbit.so
CLI    = $(BUILD)/lowbit

.PHONY: all everything test asan ubsan sanitize ubsan-clang tsan bench fuzz fuzz-corpus fuzzers install clean deps
all: $(STATIC) $(SHARED) $(CLI)
# every program: library, CLI, tests, fuzz targets, benchmarks (CI builds this with -Werror)
everything: all $(TESTS) $(FUZZERS) $(BENCHES)

# The library's headers must exist before anything compiles: checked once per
# build folder; installed with apt-get when run as root, else one line names
# the packages.
deps: $(BUILD)/.deps-ok
$(BUILD)/.deps-ok:
	@mkdir -p $(BUILD)
	@if ! printf '#include <pcre2.h>\n#include <utf8proc.h>\n' | $(CC) -DPCRE2_CODE_UNIT_WIDTH=8 -E -x c - >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "make: installing $(DEB_PKGS) with apt-get"; \
	        { apt-get install -y -qq $(DEB_PKGS) || { apt-get update -qq && apt-get install -y -qq $(DEB_PKGS); }; } >/dev/null 2>&1 || \
	            { echo "make: apt-get install $(DEB_PKGS) failed; install them and run make again"; exit 1; }; \
	    else echo "make: lowbit needs PCRE2 and utf8proc headers: install $(DEB_PKGS) (Debian/Ubuntu), then run make again"; exit 1; fi; \
	fi
	@touch $@
$(LIB_OBJ) $(TOOL_OBJ): | $(BUILD)/.deps-ok

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(AVX2_FLAGS) -MMD -c $< -o $@
$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(AVX512_FLAGS) -MMD -c $< -o $@
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) -MMD -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(SHARED): $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)
$(CLI): $(TOOL_OBJ) $(STATIC)
	$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(STATIC) $(LDFLAGS) $(LDLIBS)
$(BUILD)/tests/%: tests/%.c tests/harness.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) -MMD -o $@ $< $(STATIC) $(LDFLAGS) $(LDLIBS)
# Fuzz targets: the built-in driver (tests/fuzz_main.h) unless FUZZ_LINK
# makes them libFuzzer programs (make fuzz).
$(FUZZERS): $(BUILD)/tests/fuzz_%: tests/fuzz_%.c tests/fuzz_main.h tests/fuzz_files.h tests/harness.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(FUZZ_LINK) -MMD -o $@ $< $(STATIC) $(LDFLAGS) $(LDLIBS)
$(BUILD)/bench/%: bench/%.c bench/bench_util.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) -MMD -o $@ $< $(STATIC) $(LDFLAGS) $(LDLIBS)

test: $(TESTS) $(CLI) $(FUZZERS) $(CORPUS)
	@LOWBIT_REF_CACHE=$(CURDIR)/build/ref-cache sh tests/run_tests.sh $(BUILD) $(TESTS)

# Sanitizer builds live in their own build folders so they never mix objects.
asan:
	$(MAKE) BUILD=build-asan OPT=-O1 CFLAGS="-O1 -g -fsanitize=address -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address" test
ubsan:
	$(MAKE) BUILD=build-ubsan OPT=-O1 CFLAGS="-O1 -g -fsanitize=undefined -fno-sanitize-recover=undefined" LDFLAGS="-fsanitize=undefined" test
# Only the programs that share objects between threads: the whole suite under
# TSan would take long and exercise nothing more.
TSAN_TESTS = build-tsan/tests/test_threads build-tsan/tests/test_api
tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" $(TSAN_TESTS)
	@for t in $(TSAN_TESTS); do TSAN_OPTIONS="halt_on_error=1 $$TSAN_OPTIONS" $$t || exit 1; done
# clang's UBSan also checks what gcc's cannot: out-of-range float-to-int
# conversions (not part of -fsanitize=undefined in clang 14) and
# out-of-bounds indexing of local arrays (local-bounds).
UBSAN_CLANG = -fsanitize=undefined,float-cast-overflow,local-bounds -fno-sanitize-recover=all
ubsan-clang:
	$(MAKE) CC=clang BUILD=build-ubsan-clang OPT=-O1 CFLAGS="-O1 -g $(UBSAN_CLANG) -fno-omit-frame-pointer" LDFLAGS="$(UBSAN_CLANG)" test
# What CI runs: one clang build with AddressSanitizer and every UBSan check
# above (gcc's asan + ubsan and clang's ubsan-clang in one build and one run).
SANITIZE = -fsanitize=address,undefined,float-cast-overflow,local-bounds -fno-sanitize-recover=all
sanitize:
	$(MAKE) CC=clang BUILD=build-sanitize OPT=-O1 CFLAGS="-O1 -g $(SANITIZE) -fno-omit-frame-pointer" LDFLAGS="$(SANITIZE)" test

bench: $(BENCHES) $(CLI)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

$(CORPUS): tests/fuzz_corpus.sh $(CLI)
	@sh tests/fuzz_corpus.sh $(BUILD) && touch $@
fuzz-corpus: $(CORPUS)
fuzzers: $(FUZZERS)

# libFuzzer runs (docs/fuzzing.md): every fuzz target built with clang
# -fsanitize=fuzzer,address,undefined into FUZZ_BUILD, then run for
# FUZZ_SECONDS each from its seeds (FUZZ_ARGS: more libFuzzer options).
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
FUZZ_ARGS    ?=
FUZZ_SAN      = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
fuzz: $(FUZZERS) $(CORPUS)
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	    LDFLAGS="$(FUZZ_SAN)" FUZZ_LINK="-DLB_LIBFUZZER -fsanitize=fuzzer" fuzzers
	sh tests/fuzz_run.sh $(BUILD) $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(STATIC) $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/lowbit.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' lowbit.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lowbit.pc

clean:
	rm -rf build build-asan build-ubsan build-sanitize build-ubsan-clang build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
