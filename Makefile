# mcp-sandboxd: plain Makefile, every library through pkg-config.
VERSION  := 2.0.0
.DEFAULT_GOAL := all
CC       ?= gcc
PKGS     := libh2o-evloop hiredis libcjson libbsd libseccomp libssl libcrypto libcares
# pkg-config runs only after scripts/deps.sh installed the packages: the flags
# live in build/pkg.mk, which depends on .deps-ok. Make builds an included
# makefile first and then restarts, so the very first `make run` on a machine
# without the -dev packages sees the real flags (not an empty pkg-config).
NODEPS_GOALS := clean cluster-down
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
include build/pkg.mk
endif
build/pkg.mk: .deps-ok Makefile
	@mkdir -p $(dir $@)
	@c=$$(pkg-config --cflags $(PKGS)) && l=$$(pkg-config --libs $(PKGS)) && \
	 m=$$(pkg-config --libs cmocka) && \
	 printf 'PKG_CFLAGS := %s\nPKG_LIBS := %s\nCMOCKA_LIBS := %s\n' "$$c" "$$l" "$$m" > $@.tmp
	@mv $@.tmp $@
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation \
            -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -DMCP_SANDBOXD_VERSION='"$(VERSION)"' -Iinclude $(PKG_CFLAGS) -pthread
LDLIBS   += $(PKG_LIBS) -pthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# build/flags.stamp holds the compile flags (VERSION, CFLAGS, the packages'):
# rewritten when they change, and every object depends on it, so a changed
# flag rebuilds what it affects instead of linking objects built without it.
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
FLAGS_NOW := $(CC) $(CFLAGS) $(SAN) $(LDLIBS)
ifneq ($(FLAGS_NOW),$(file <build/flags.stamp))
$(shell mkdir -p build)
$(file >build/flags.stamp,$(FLAGS_NOW))
endif
endif

SRCS     := $(wildcard src/*.c src/*/*.c)
HDRS     := $(wildcard include/*/*.h src/*/*.def)
OBJS     := $(SRCS:src/%.c=build/rel/%.o)
ASAN_OBJS:= $(SRCS:src/%.c=build/asan/%.o)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS:= $(wildcard tests/unit/test_*.c)
UNIT_BINS:= $(UNIT_SRCS:tests/unit/%.c=build/unit/%)

.PHONY: all asan run test unit integration integration-asan bench bench-load soak deps clean cluster cluster-down fuzz fuzz-smoke fuzz-build
all: mcp-sandboxd mcp-sandboxd-bridge

deps: .deps-ok
.deps-ok: scripts/deps.sh
	./scripts/deps.sh
	@touch $@

# the server finds the egress bridge (issue 14) next to its own binary: both are built together
mcp-sandboxd: $(OBJS) mcp-sandboxd-bridge
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(LDLIBS)

mcp-sandboxd-asan: $(ASAN_OBJS) mcp-sandboxd-bridge
	$(CC) $(CFLAGS) $(SAN) -o $@ $(ASAN_OBJS) $(LDLIBS)

# runs inside the sandbox before seccomp: libc only, no sanitizer, and static, so that
# no LD_PRELOAD / LD_LIBRARY_PATH of the run's environment loads code before the filter
mcp-sandboxd-bridge: bridge/mcp-sandboxd-bridge.c Makefile
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -static -o $@ $<

asan: mcp-sandboxd-asan

build/rel/%.o: src/%.c $(HDRS) build/flags.stamp | .deps-ok
	@mkdir -p $(dir $@)
	@echo "CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

build/asan/%.o: src/%.c $(HDRS) build/flags.stamp | .deps-ok
	@mkdir -p $(dir $@)
	@echo "CC asan $<"
	@$(CC) $(CFLAGS) $(SAN) -O1 -c -o $@ $<

# Unit tests include the .c under test (to reach static functions). A test
# with a line "unit-links: core/util core/log ..." links those objects only
# (and fakes the rest itself, at link level); any other links every other
# sanitizer object.
unit_included = $(shell sed -n 's|^.include "../../src/\(.*\)\.c"|\1|p' $(1))
unit_links = $(shell sed -n 's|^ \* unit-links:||p' $(1))
build/unit/%: tests/unit/%.c $(ASAN_OBJS) $(HDRS) build/flags.stamp | .deps-ok
	@mkdir -p $(dir $@)
	@echo "UNIT    $@"
	@$(CC) $(CFLAGS) $(SAN) -O1 -Wno-unused-function -o $@ $< \
	    $(if $(call unit_links,$<),$(patsubst %,build/asan/%.o,$(call unit_links,$<)),\
	      $(filter-out build/asan/main.o $(patsubst %,build/asan/%.o,$(call unit_included,$<)),$(ASAN_OBJS))) \
	    $(LDLIBS) $(CMOCKA_LIBS)

# libFuzzer targets (tests/fuzz/fuzz_*.c): the sources built again with clang,
# ASan and UBSan and coverage instrumentation. A target that includes a .c
# (to reach its static functions, as the unit tests do) is linked without that
# object (found in the layer folders); FUZZ_LDFLAGS_<target> may add link flags.
FUZZ_CC    ?= clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = $(CFLAGS) -O1 -Wno-unknown-warning-option $(FUZZ_SAN)
FUZZ_OBJS  := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 300
.SECONDARY: $(FUZZ_OBJS)

build/fuzz/obj/%.o: src/%.c $(HDRS) | .deps-ok
	@mkdir -p $(dir $@)
	@echo "CC fuzz $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_check.h $(FUZZ_OBJS) $(HDRS) | .deps-ok
	@mkdir -p $(dir $@)
	@echo "FUZZ    $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Wno-unused-function -o $@ $< \
	    $(filter-out $(patsubst %,build/fuzz/obj/%.o,$(shell sed -n 's|^.include "../../src/\(.*\)\.c"|\1|p' $<)),$(FUZZ_OBJS)) \
	    $(FUZZ_LDFLAGS_$*) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# FUZZ_SECONDS (default 300) per target; new inputs go to build/fuzz/corpus/<target>
fuzz: $(FUZZ_BINS)
	./scripts/fuzz.sh run $(FUZZ_SECONDS)

# corpus replay plus 10 s of fuzzing per target (part of make test)
fuzz-smoke: $(FUZZ_BINS)
	./scripts/fuzz.sh smoke 10

run: mcp-sandboxd
	./mcp-sandboxd --host 127.0.0.1 --port 8080

# A local cluster: redis + 3 replicas + nginx on loopback, under ./.cluster
cluster: mcp-sandboxd
	./scripts/cluster.sh up 3

cluster-down:
	./scripts/cluster.sh down

unit: $(UNIT_BINS)
	./scripts/run-unit.sh $(UNIT_BINS)

test: mcp-sandboxd mcp-sandboxd-asan $(UNIT_BINS) $(FUZZ_BINS)
	./scripts/test.sh

bench: mcp-sandboxd
	./scripts/bench-protocol.sh
	./scripts/bench-exec.sh
	./scripts/bench-mirror.sh
	./scripts/bench-output-scale.sh
	./scripts/bench-load.sh

bench-load: mcp-sandboxd
	./scripts/bench-load.sh

# make soak DURATION=10m (30s, 1h, ...)
DURATION ?= 10m
soak: mcp-sandboxd
	./scripts/soak.sh $(DURATION)

clean:
	rm -rf build mcp-sandboxd mcp-sandboxd-asan mcp-sandboxd-bridge
