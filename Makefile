# mcp-sandboxd: plain Makefile, every library through pkg-config.
VERSION  := 0.4.0
CC       ?= gcc
PKGS     := libh2o-evloop hiredis libcjson libbsd libseccomp libssl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation \
            -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -DMCP_SANDBOXD_VERSION='"$(VERSION)"' -Iinclude $(PKG_CFLAGS) -pthread
LDLIBS   += $(PKG_LIBS) -pthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=build/rel/%.o)
ASAN_OBJS:= $(SRCS:src/%.c=build/asan/%.o)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS:= $(wildcard tests/unit/test_*.c)
UNIT_BINS:= $(UNIT_SRCS:tests/unit/%.c=build/unit/%)

.PHONY: all asan run test unit integration integration-asan bench bench-load soak deps clean cluster cluster-down
all: mcp-sandboxd

deps: .deps-ok
.deps-ok: scripts/deps.sh
	./scripts/deps.sh
	@touch $@

mcp-sandboxd: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

mcp-sandboxd-asan: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

asan: mcp-sandboxd-asan

build/rel/%.o: src/%.c $(wildcard include/*.h) | .deps-ok
	@mkdir -p $(dir $@)
	@echo "CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

build/asan/%.o: src/%.c $(wildcard include/*.h) | .deps-ok
	@mkdir -p $(dir $@)
	@echo "CC asan $<"
	@$(CC) $(CFLAGS) $(SAN) -O1 -c -o $@ $<

# Unit tests include the .c under test (to reach static functions) and link the
# other sanitizer objects.
build/unit/%: tests/unit/%.c $(ASAN_OBJS) $(wildcard include/*.h) | .deps-ok
	@mkdir -p $(dir $@)
	@echo "UNIT    $@"
	@$(CC) $(CFLAGS) $(SAN) -O1 -Wno-unused-function -o $@ $< \
	    $(filter-out build/asan/main.o build/asan/$(patsubst test_%,%,$*).o,$(ASAN_OBJS)) \
	    $(LDLIBS) $(shell pkg-config --libs cmocka)

run: mcp-sandboxd
	./mcp-sandboxd --host 127.0.0.1 --port 8080

# A local cluster: redis + 3 replicas + nginx on loopback, under ./.cluster
cluster: mcp-sandboxd
	./scripts/cluster.sh up 3

cluster-down:
	./scripts/cluster.sh down

unit: $(UNIT_BINS)
	./scripts/run-unit.sh $(UNIT_BINS)

test: mcp-sandboxd mcp-sandboxd-asan $(UNIT_BINS)
	./scripts/test.sh

bench: mcp-sandboxd
	./scripts/bench-protocol.sh
	./scripts/bench-exec.sh
	./scripts/bench-mirror.sh
	./scripts/bench-load.sh

bench-load: mcp-sandboxd
	./scripts/bench-load.sh

# make soak DURATION=10m (30s, 1h, ...)
DURATION ?= 10m
soak: mcp-sandboxd
	./scripts/soak.sh $(DURATION)

clean:
	rm -rf build mcp-sandboxd mcp-sandboxd-asan
