# Nodo: Odoo multi-tenant node agent.
#
#   make                 build/odoo-local-api, build/odoo-db-watcher,
#                        build/nodo (the command line tool)
#   make check           everything under ASan+UBSan, warnings as errors:
#                        unit tests (cmocka), then integration tests
#                        (pytest, real PostgreSQL 15, fake Cloudflare)
#   make install DESTDIR= PREFIX=/opt/nodo
#   make lint            banned functions, shellcheck, clang-format check
#
# Sources are found by wildcard: a new src/lib/x.c joins libnodo.a, a new
# tests/unit/test_x.c becomes a unit test, without editing this file.

PREFIX   ?= /opt/nodo
DESTDIR  ?=
CC       ?= cc
PKGS      = libmicrohttpd libpq libcurl libcjson libsystemd libcrypto libarchive
PYTHON   ?= /usr/bin/python3
VERSION   = 1.0.0

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     = -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -Wvla -Wcast-qual
BASE_CFLAGS = -std=c17 -D_GNU_SOURCE -DNODO_VERSION='"$(VERSION)"' \
           -Iinclude $(PKG_CFLAGS) $(WARN) -pthread
CFLAGS  ?= -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDLIBS   = $(PKG_LIBS) -pthread

# B is the build directory; `make check` uses build-san with sanitizers.
B ?= build
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined -Werror

LIB_SRC     := $(wildcard src/lib/*.c)
API_SRC     := $(wildcard src/api/*.c)
WATCHER_SRC := $(wildcard src/watcher/*.c)
CLI_SRC     := $(wildcard src/cli/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
HEADERS     := $(wildcard include/nodo/*.h src/*/*.h)

LIB_OBJ     := $(LIB_SRC:%.c=$(B)/obj/%.o)
API_OBJ     := $(API_SRC:%.c=$(B)/obj/%.o)
WATCHER_OBJ := $(WATCHER_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

.PHONY: all check unit integration install uninstall lint clean deps demo \
        settings-docs bench fuzz stress deb system-test

all: $(B)/odoo-local-api $(B)/odoo-db-watcher $(B)/nodo

$(B)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libnodo.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(B)/odoo-local-api: $(API_OBJ) $(B)/libnodo.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(API_OBJ) $(B)/libnodo.a $(LDLIBS)

$(B)/odoo-db-watcher: $(WATCHER_OBJ) $(B)/libnodo.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(WATCHER_OBJ) $(B)/libnodo.a $(LDLIBS)

$(B)/nodo: $(CLI_OBJ) $(B)/libnodo.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(B)/libnodo.a $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libnodo.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libnodo.a \
	    $(LDLIBS) -lcmocka

# Installs missing build and test packages when run as root (fresh Debian).
deps:
	@sh tests/deps.sh

unit: all $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: all
	NODO_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	    tests/integration $(PYTEST_ARGS)

# The release build must be warning-free too: -O2 and _FORTIFY_SOURCE find
# what -O1 does not (a format that may truncate, say).
check: deps
	$(MAKE) CFLAGS='$(CFLAGS) -Werror' all
	$(MAKE) B=build-san CFLAGS='$(SAN_FLAGS)' unit
	sh tests/fuzz/regress.sh
	$(MAKE) B=build-san CFLAGS='$(SAN_FLAGS)' integration

FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

bench: all
	NODO_BUILD=$(abspath $(B)) $(PYTHON) tests/bench/bench.py

# The long runs (issue: reliability). CI runs a short variant:
#   make stress LOAD_SECONDS=20 NODO_CRASH_TRIALS=12 NODO_BIG_BACKUP_MB=256
LOAD_SECONDS ?= 600
NODO_CRASH_TRIALS ?= 50
NODO_BIG_BACKUP_MB ?= 1024
stress: all
	NODO_BUILD=$(abspath $(B)) NODO_CRASH_TRIALS=$(NODO_CRASH_TRIALS) \
	    sh tests/stress/crash.sh
	NODO_BUILD=$(abspath $(B)) LOAD_SECONDS=$(LOAD_SECONDS) \
	    $(PYTHON) tests/stress/load.py
	NODO_BUILD=$(abspath $(B)) NODO_BIG_BACKUP_MB=$(NODO_BIG_BACKUP_MB) \
	    $(PYTHON) tests/stress/big_backup.py

demo: all
	NODO_BUILD=$(abspath $(B)) $(PYTHON) tests/demo.py

# The example env file and docs/SETTINGS.md come from the table of keys
# (src/lib/settings.c); test_settings_table.py checks they are up to date.
settings-docs: all
	$(B)/odoo-local-api --print-example-env >config/nodo.env
	$(B)/odoo-local-api --print-settings-doc >docs/SETTINGS.md

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/scripts \
	    $(DESTDIR)$(PREFIX)/config $(DESTDIR)$(PREFIX)/cloudflare \
	    $(DESTDIR)$(PREFIX)/systemd $(DESTDIR)$(PREFIX)/docs
	install -m 0755 $(B)/odoo-local-api $(B)/odoo-db-watcher $(B)/nodo \
	    $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(wildcard scripts/*.sh) $(DESTDIR)$(PREFIX)/scripts/
	install -m 0644 config/nodo.env $(DESTDIR)$(PREFIX)/config/nodo.env
	[ -e $(DESTDIR)$(PREFIX)/cloudflare/domains.json ] || \
	    install -m 0644 cloudflare/domains.json \
	    $(DESTDIR)$(PREFIX)/cloudflare/domains.json
	install -m 0644 $(wildcard systemd/*.service) \
	    $(DESTDIR)$(PREFIX)/systemd/
	install -m 0644 $(wildcard docs/*.md docs/*.yaml) \
	    $(DESTDIR)$(PREFIX)/docs/

# The Debian package: DEB_OUT/nodo_<version>_<arch>.deb, built with
# dpkg-buildpackage from a copy of the tree (debian/ says how). PKG_VERSION
# builds another version from the same tree (the system test's upgrade).
# The package build does not inherit this make's command line (MAKEFLAGS).
DEB_OUT ?= build/deb
PKG_VERSION ?=
deb:
	rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src
	{ git ls-files -z --cached --others --exclude-standard 2>/dev/null || \
	    find . -path ./.git -prune -o -path './build*' -prune -o \
	    -type f -print0; } | \
	    tar -c --null --ignore-failed-read -T - | tar -x -C $(DEB_OUT)/src
	if [ -n "$(PKG_VERSION)" ]; then \
	    { printf 'nodo (%s) bookworm; urgency=medium\n\n  * Rebuilt as %s.\n\n -- %s  %s\n\n' \
	        '$(PKG_VERSION)' '$(PKG_VERSION)' 'Nodo developers <dev@nodo.local>' \
	        "$$(date -R)"; cat debian/changelog; } >$(DEB_OUT)/src/debian/changelog; \
	fi
	cd $(DEB_OUT)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    dpkg-buildpackage -b -us -uc
	rm -rf $(DEB_OUT)/src
	ls -l $(DEB_OUT)/*.deb

# Boots a Debian 12 container with systemd as PID 1 and runs the node in it
# as an operator would (tests/system/README.md); root only.
system-test:
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/system $(PYTEST_ARGS)

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/odoo-local-api \
	    $(DESTDIR)$(PREFIX)/bin/odoo-db-watcher $(DESTDIR)$(PREFIX)/bin/nodo

lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)\(' \
	    src/*/*.c include/nodo/*.h || { echo "banned function"; exit 1; }
	shellcheck -x scripts/*.sh install.sh tests/*.sh tests/fuzz/*.sh .ci/run
	shellcheck -s sh debian/nodo.preinst debian/nodo.postinst debian/nodo.prerm \
	    debian/nodo.postrm
	clang-format --dry-run --Werror src/*/*.c src/*/*.h include/nodo/*.h \
	    tests/unit/*.c tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf build build-san build-fuzz
