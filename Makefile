# vc - build, test and install.
#
#   make                 build/vc
#   make test            luacheck, the specs, the specs again under ASan+UBSan,
#                        the C core's specs under valgrind, the fuzz targets
#   make valgrind        the C core's specs under valgrind memcheck
#   make fuzz            each libFuzzer target for FUZZ_SECONDS (60)
#   make install PREFIX=/usr/local
#
# scripts/dev installs the Debian packages this needs (see README.md).

VERSION := 0.1.0
PREFIX ?= /usr/local

CC ?= cc
CFLAGS ?= -O2 -g
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4)
# -iquote src: an include across folders names its folder ("sys/error.h"), so
# that each file's dependencies on the layers of src/ are plain to see
# (scripts/check-layers holds them to docs/ARCHITECTURE.md's order).
VC_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP -iquote src \
             -DVC_VERSION='"$(VERSION)"' $(LUA_CFLAGS)
# The libraries are linked statically (all but the C library): a vc
# command starts ~0.5 ms sooner than with seven shared libraries to load
# and relocate, which every command, and a one-shot pod, pays.  The whole
# of Lua is linked, and -Wl,-E exports it, so that Lua C modules (lfs,
# used by busted) find every Lua API function they call.
LDLIBS := -Wl,-E -Wl,-Bstatic -Wl,--whole-archive -llua5.4 -Wl,--no-whole-archive \
          -l:liblua5.4-cjson.a -luuid -ledit -ltinfo -lbsd -lmd -Wl,-Bdynamic -lm
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer \
       -fno-sanitize-recover=all

# vc: every folder of src/ but the agent's (src/agentd/).
SRC_DIRS := sys proto core hv agent policy host
SRCS := $(foreach d,$(SRC_DIRS),$(wildcard src/$(d)/*.c))
OBJS := $(SRCS:src/%.c=build/obj/%.o)
SAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)

# The agent: a static program (the guest has no libc), from src/agentd/
# and the protocol code it shares with the host (src/proto/, src/sys/).
AGENT_SRCS := $(wildcard src/agentd/*.c) src/proto/json.c src/proto/proto.c \
              src/sys/error.c
AGENT_OBJS := $(AGENT_SRCS:src/%.c=build/agent-obj/%.o)
AGENT_SAN_OBJS := $(AGENT_SRCS:src/%.c=build/asan/agent-obj/%.o)

.PHONY: all asan rootfs guest test lint spec install uninstall clean demo fuzz bench \
        valgrind

all: build/vc build/vc-runtime build/vc-agent build/luac.stamp

# vc-runtime, the OCI runtime command line (lua/vc/cli/oci.lua), is vc
# under that name: a hard link, as tools resolve symbolic links.
build/vc-runtime: build/vc
	ln -f build/vc $@

# vc's Lua modules compiled (scripts/luacache.lua): loading them is ~15x
# faster than compiling them at each start; vc uses one only while it is
# at least as new as its source.
LUA_SRCS := $(shell find lua -name '*.lua')
build/luac.stamp: build/vc scripts/luacache.lua $(LUA_SRCS)
	build/vc run scripts/luacache.lua
	@touch $@

build/vc: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(VC_CFLAGS) $(CFLAGS) -c -o $@ $<

# libseccomp compiles the containers' seccomp filters (static here: the
# guest has no libc, let alone libseccomp).
AGENT_LDLIBS := -lseccomp

build/vc-agent: $(AGENT_OBJS)
	$(CC) -static $(CFLAGS) $(LDFLAGS) -o $@ $^ $(AGENT_LDLIBS)

# The guest's /init (guest/init.c): static too, it runs before the agent.
build/vc-init: guest/init.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -static $(CFLAGS) $(LDFLAGS) -o $@ $<

build/agent-obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(VC_CFLAGS) $(CFLAGS) -c -o $@ $<

# The sanitized agent is dynamic: the sanitizers do not link statically.
# build/vc-asan runs it (a program's sibling with the same suffix).
build/vc-agent-asan: $(AGENT_SAN_OBJS)
	$(CC) $(SAN) -g $(LDFLAGS) -o $@ $^ $(AGENT_LDLIBS)

build/asan/agent-obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(VC_CFLAGS) $(SAN) -O1 -g -c -o $@ $<

asan: build/vc-asan build/vc-agent-asan

build/vc-asan: $(SAN_OBJS)
	$(CC) $(SAN) -g $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/asan/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(VC_CFLAGS) $(SAN) -O1 -g -c -o $@ $<

-include $(OBJS:.o=.d) $(SAN_OBJS:.o=.d) $(AGENT_OBJS:.o=.d) $(AGENT_SAN_OBJS:.o=.d)
-include $(wildcard build/fuzz/obj/*/*.d build/fuzz/*.d)

# A busybox root file system for examples and tests.
rootfs: build/rootfs/bin/busybox

build/rootfs/bin/busybox: scripts/mkrootfs
	scripts/mkrootfs build/rootfs

# The guest image of the VM backends: Debian's kernel as an uncompressed
# vmlinux, and an initramfs with busybox, vc-init (guest/init.c), the
# agent and the kernel modules (scripts/mkguest).  The stamp names the
# kernel package; it is checked again when apt's package lists change.
guest: build/guest/vmlinux build/guest/initrd

build/guest/vmlinux build/guest/initrd &: scripts/mkguest $(wildcard guest/*) \
		build/vc-agent build/vc-init build/guest/pkg/stamp
	scripts/mkguest build/guest

build/guest/pkg/stamp: $(wildcard /var/lib/apt/lists/*_Packages*)
	scripts/mkguest --fetch build/guest

# libFuzzer targets (clang): make fuzz [FUZZ_SECONDS=60]
# The C core is built once more with clang, instrumented for libFuzzer,
# ASan and UBSan, into build/fuzz/libvc.a; each target links from it only
# the objects it needs (agent_msg: the protocol code; id: the store;
# config: the Lua host of luahost.c and every module it preloads), with
# vc's libraries (Lua 5.4, lua-cjson's static library, libuuid...).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst fuzz/%.c,build/fuzz/%,$(wildcard fuzz/*.c))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJS := $(filter-out build/fuzz/obj/host/main.o,$(SRCS:src/%.c=build/fuzz/obj/%.o))

# Without -Werror: gcc's build holds the warnings policy; a warning only
# clang gives must not stop the fuzzing (it is still printed).
build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(@D)
	clang $(filter-out -Werror,$(VC_CFLAGS)) -g -O1 -fsanitize=fuzzer-no-link \
	  $(FUZZ_SAN) -c -o $@ $<

# A thin archive (T): its members keep their paths, so hv/mock.o and
# agent/mock.o are two members, not one replacing the other.
build/fuzz/libvc.a: $(FUZZ_OBJS)
	rm -f $@
	ar rcsT $@ $^

build/fuzz/%: fuzz/%.c build/fuzz/libvc.a
	@mkdir -p $(@D)
	clang $(VC_CFLAGS) -DFUZZ_HOME='"$(CURDIR)"' -g -O1 \
	  -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< build/fuzz/libvc.a $(LDLIBS)

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); mkdir -p build/fuzz/corpus-$$name; \
	  echo "== fuzz $$name for $(FUZZ_SECONDS)s"; \
	  dict=; [ ! -f fuzz/$$name.dict ] || dict=-dict=fuzz/$$name.dict; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $$dict \
	    -artifact_prefix=build/fuzz/$$name- \
	    build/fuzz/corpus-$$name fuzz/corpus/$$name || exit 1; \
	done

lint:
	luacheck -q $(wildcard lua spec policies examples bench)

# Runs everything and ends with the line "N passed, N failed".
test: all asan rootfs guest
	scripts/run-tests

# The C core's specs under valgrind memcheck (scripts/valgrind says which).
valgrind: build/vc build/vc-agent
	scripts/valgrind

# One spec run with the normal build: make spec [SPEC=spec/x_spec.lua]
spec: build/vc
	VC_BIN=$(CURDIR)/build/vc build/vc run /usr/bin/busted $(SPEC)

demo: all rootfs guest
	build/vc run examples/hello.lua

# The benchmarks against crun and raw QEMU; rewrites the table in
# docs/PERFORMANCE.md.
bench: all rootfs guest
	bench/run

install: build/vc build/vc-agent
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/vc
	install -m 0755 build/vc $(DESTDIR)$(PREFIX)/bin/vc
	ln -f $(DESTDIR)$(PREFIX)/bin/vc $(DESTDIR)$(PREFIX)/bin/vc-runtime
	install -m 0755 build/vc-agent $(DESTDIR)$(PREFIX)/bin/vc-agent
	cp -R lua examples cni $(DESTDIR)$(PREFIX)/share/vc/
	if [ -d policies ]; then cp -R policies $(DESTDIR)$(PREFIX)/share/vc/; fi
	if [ -f build/guest/vmlinux ]; then \
	  install -d $(DESTDIR)$(PREFIX)/share/vc/build/guest && \
	  install -m 0644 build/guest/vmlinux build/guest/initrd \
	    $(DESTDIR)$(PREFIX)/share/vc/build/guest/; fi

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/vc $(DESTDIR)$(PREFIX)/bin/vc-runtime \
	       $(DESTDIR)$(PREFIX)/bin/vc-agent \
	       $(DESTDIR)$(PREFIX)/share/vc

clean:
	rm -rf build
