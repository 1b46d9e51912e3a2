# vc - build, test and install.
#
#   make                 build/vc
#   make test            luacheck, the specs, the specs again under ASan+UBSan
#   make install PREFIX=/usr/local
#
# scripts/dev installs the Debian packages this needs (see README.md).

VERSION := 0.1.0
PREFIX ?= /usr/local

CC ?= cc
CFLAGS ?= -O2 -g
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4)
LUA_LIBS := $(shell pkg-config --libs lua5.4)
VC_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
             -DVC_VERSION='"$(VERSION)"' $(LUA_CFLAGS)
# -Wl,-E exports the Lua API so that Lua C modules (lfs, used by busted) load.
LDLIBS := -Wl,-E $(LUA_LIBS) -l:liblua5.4-cjson.a -luuid -lm
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer \
       -fno-sanitize-recover=all

SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=build/obj/%.o)
SAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)

.PHONY: all asan rootfs test lint spec install uninstall clean demo

all: build/vc

build/vc: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(VC_CFLAGS) $(CFLAGS) -c -o $@ $<

asan: build/vc-asan

build/vc-asan: $(SAN_OBJS)
	$(CC) $(SAN) -g $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/asan/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(VC_CFLAGS) $(SAN) -O1 -g -c -o $@ $<

-include $(OBJS:.o=.d) $(SAN_OBJS:.o=.d)

# A busybox root file system for examples and tests.
rootfs: build/rootfs/bin/busybox

build/rootfs/bin/busybox: scripts/mkrootfs
	scripts/mkrootfs build/rootfs

lint:
	luacheck -q $(wildcard lua spec policies examples bench)

# Runs everything and ends with the line "N passed, N failed".
test: build/vc build/vc-asan rootfs
	scripts/run-tests

# One spec run with the normal build: make spec [SPEC=spec/x_spec.lua]
spec: build/vc
	VC_BIN=$(CURDIR)/build/vc build/vc run /usr/bin/busted $(SPEC)

demo: build/vc
	build/vc run examples/hello.lua

install: build/vc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/vc
	install -m 0755 build/vc $(DESTDIR)$(PREFIX)/bin/vc
	cp -R lua policies examples $(DESTDIR)$(PREFIX)/share/vc/

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/vc $(DESTDIR)$(PREFIX)/share/vc

clean:
	rm -rf build
