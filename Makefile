# mcpsec: `make` builds, `make check` runs every test suite, `make install` installs.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
UNITDIR ?= /lib/systemd/system
DATADIR = $(PREFIX)/share/mcpsec
DOCDIR = $(PREFIX)/share/doc/mcpsec
COMPLETIONDIR = $(PREFIX)/share/bash-completion/completions
# The default state directory (lib/state.c mc_state_default_dir): the units name it.
STATEDIR = /var/lib/mcpsec
BUILD ?= build

# The version, from one place: the first line of debian/changelog ("mcpsec (1.0.0) ...").
VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)

CC ?= cc
PKGS = libnl-route-3.0 libnl-3.0 yaml-0.1 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WERROR ?= 1
WARN = -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wformat=2 -Wundef -Wpointer-arith -Wimplicit-fallthrough -fno-common
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -I$(BUILD)/bpf -I$(BUILD) -MMD -MP
# mcpsecd's per-flow drop hook: a CO-RE BPF object (clang), stripped of its DWARF (BTF stays),
# its skeleton (bpftool), libbpf. WITH_BPF=0 builds a daemon without it, whose per-flow hook
# reports "built without BPF" (cmd/mcpsecd/dropmon-none.c); everything else works.
WITH_BPF ?= 1
BPF_CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
BPF_STRIP ?= $(shell command -v llvm-strip 2>/dev/null || command -v llvm-strip-14 2>/dev/null)
BPF_ARCH := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/; s/ppc64le/powerpc/; s/s390x/s390/; s/riscv64/riscv/')
# mcpsecd's inner-flow observer (cmd/mcpsecd/inner.c) is the only libnftables user.
NFT_LIBS := $(shell pkg-config --libs libnftables 2>/dev/null || echo -lnftables)
BPF_LIBS := $(if $(filter 1,$(WITH_BPF)),$(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf))
# Release hardening (the sanitizer test build has its own instrumentation instead).
HARDEN = -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
HARDEN_LD = -pie -Wl,-z,relro,-z,now
# The clang build that make check runs: warnings beyond -Wall -Wextra, as errors.
CLANG_WARN = -Wextra-semi -Wunreachable-code-aggressive -Wcomma -Wassign-enum -Wconditional-uninitialized \
	-Wmissing-variable-declarations -Wduplicate-enum -Wshadow-all -Wloop-analysis -Wstring-conversion \
	-Wnewline-eof -Wcovered-switch-default -Wshorten-64-to-32 -Wformat-nonliteral
# The test build: sanitizers on, same warnings; its binaries also link the test-only fault
# injection (tests/fault: MCPSEC_FAULT), which the release binaries never contain.
SAN = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# cmd/mcpsecd/dropmon.c (libbpf) is the daemon's alone: the CLI, unit tests and fuzzers need no
# libbpf; with WITH_BPF=0 the daemon takes dropmon-none.c instead.
LIB_SRC = $(wildcard lib/*.c)
CMD_SRC = $(wildcard cmd/mcpsec/*.c)
DAEMON_SRC = $(filter-out cmd/mcpsecd/dropmon$(if $(filter 1,$(WITH_BPF)),-none).c,$(wildcard cmd/mcpsecd/*.c))
UNIT_SRC = $(wildcard tests/unit/test_*.c)
FAULT_SRC = tests/fault/fault.c

LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ = $(CMD_SRC:%.c=$(BUILD)/%.o)
SLIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/san/%.o)
SCMD_OBJ = $(CMD_SRC:%.c=$(BUILD)/san/%.o)
DAEMON_OBJ = $(DAEMON_SRC:%.c=$(BUILD)/%.o)
SDAEMON_OBJ = $(DAEMON_SRC:%.c=$(BUILD)/san/%.o)
SFAULT_OBJ = $(FAULT_SRC:%.c=$(BUILD)/san/%.o)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/san/tests/%)

# Fuzzing: libFuzzer targets built with clang. make fuzz searches; make check runs every
# committed corpus input and crash reproducer once through the same binaries (-runs=0).
FUZZ_TARGETS = site keys import unseal record netlink stagetable
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FLIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/fuzz/%.o)
FUZZ_BIN = $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)


.PHONY: all check check-fast unit bats lab nobpf clean install deb deps check-headers golden-update bench fuzz fuzz-build replay clang-warnings
all: mcpsec mcpsecd

mcpsec: $(LIB_OBJ) $(CMD_OBJ)
	$(CC) $(CFLAGS) $(HARDEN_LD) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

mcpsecd: $(LIB_OBJ) $(DAEMON_OBJ)
	$(CC) $(CFLAGS) $(HARDEN_LD) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(BPF_LIBS) $(NFT_LIBS) $(LDLIBS)

$(BUILD)/bpf/drops.bpf.o: cmd/mcpsecd/bpf/drops.bpf.c cmd/mcpsecd/bpf/drops.h cmd/mcpsecd/bpf/kernel-types.h lib/wire.h
	@mkdir -p $(dir $@)
	@echo "  BPF $<"; $(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror -Icmd/mcpsecd/bpf -c -o $@ $<
	@if [ -n "$(BPF_STRIP)" ]; then $(BPF_STRIP) -g $@; fi

$(BUILD)/bpf/drops.skel.h: $(BUILD)/bpf/drops.bpf.o
	@echo "  SKEL $@"; $(BPFTOOL) gen skeleton $< name drops >$@.tmp && mv $@.tmp $@

$(BUILD)/cmd/mcpsecd/dropmon.o $(BUILD)/san/cmd/mcpsecd/dropmon.o: $(BUILD)/bpf/drops.skel.h

# build/version.h: rewritten only when the version changes (so nothing rebuilds needlessly).
$(BUILD)/version.h: debian/changelog
	@mkdir -p $(dir $@)
	@echo '#define MCPSEC_VERSION "$(VERSION)"' >$@.tmp; cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
$(BUILD)/cmd/mcpsec/main.o $(BUILD)/san/cmd/mcpsec/main.o $(BUILD)/cmd/mcpsecd/main.o $(BUILD)/san/cmd/mcpsecd/main.o: $(BUILD)/version.h

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(ALL_CFLAGS) $(HARDEN) -c -o $@ $<

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC [san] $<"; $(CC) $(ALL_CFLAGS) $(SAN) -c -o $@ $<

# Sanitized binary used by the bats suites.
$(BUILD)/san/mcpsec: $(SLIB_OBJ) $(SCMD_OBJ) $(SFAULT_OBJ)
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/san/mcpsecd: $(SLIB_OBJ) $(SDAEMON_OBJ) $(SFAULT_OBJ)
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(BPF_LIBS) $(NFT_LIBS) $(LDLIBS)

$(BUILD)/san/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(SLIB_OBJ) $(SFAULT_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD [san] $@"; $(CC) $(ALL_CFLAGS) $(SAN) $(LDFLAGS) -o $@ $< $(SLIB_OBJ) $(SFAULT_OBJ) $(PKG_LIBS) $(LDLIBS)

# Every source through clang with CLANG_WARN as errors (make check runs it; no binary made).
clang-warnings: $(BUILD)/bpf/drops.skel.h $(BUILD)/version.h
	@for f in $(LIB_SRC) $(CMD_SRC) $(FAULT_SRC) $(wildcard cmd/mcpsecd/*.c); do \
		clang -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(CLANG_WARN) $(CPPFLAGS) $(PKG_CFLAGS) -I$(BUILD)/bpf -I$(BUILD) -fsyntax-only $$f || exit 1; \
	done; echo "clang $(words $(LIB_SRC) $(CMD_SRC) $(FAULT_SRC) $(wildcard cmd/mcpsecd/*.c)) files: no warnings"

$(BUILD)/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC [fuzz] $<"; $(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(PKG_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(wildcard lib/*.h) $(FLIB_OBJ)
	@echo "  LD [fuzz] $@"; $(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(PKG_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FLIB_OBJ) $(PKG_LIBS)

# Kept: make would otherwise delete these objects after a build (pattern-rule intermediates),
# and its "rm" line would follow make check's summary line.
.SECONDARY: $(FLIB_OBJ)

fuzz-build: $(FUZZ_BIN)

# Each target for FUZZ_SECONDS (new inputs go to build/fuzz/corpus, crashes to
# tests/fuzz/crashes/TARGET/ to be kept as regression inputs once fixed).
fuzz: $(FUZZ_BIN)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$t tests/fuzz/crashes/$$t; \
		echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=1 -rss_limit_mb=2048 \
			-max_len=65536 -print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/$$t/ \
			$(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

replay: $(FUZZ_BIN)
	@tests/run-suites replay

deps:
	scripts/install-deps

unit: $(UNIT_BIN)
	@tests/run-suites unit $(UNIT_BIN)

bats: $(BUILD)/san/mcpsec $(BUILD)/san/mcpsecd mcpsec mcpsecd nobpf
	@tests/run-suites bats

# Two hosts with real SAs: in the lab VM when this kernel has no ESP/AH.
lab: $(BUILD)/san/mcpsec $(BUILD)/san/mcpsecd mcpsec mcpsecd
	@tests/run-suites lab

# Every suite, then one summary line: "N passed, N failed, N skipped". The lab runs beside the
# host suites (tests/run-suites).
check: mcpsec mcpsecd $(BUILD)/san/mcpsec $(BUILD)/san/mcpsecd nobpf $(UNIT_BIN) $(FUZZ_BIN)
	@tests/run-suites all $(UNIT_BIN)

# The inner loop: what needs neither root, namespaces nor the lab VM (unit tests, schema, clang,
# shellcheck, fuzz replay). Same summary line.
check-fast: mcpsec $(UNIT_BIN) $(FUZZ_BIN)
	@tests/run-suites fast $(UNIT_BIN)

check-headers: $(BUILD)/bpf/drops.skel.h
	@for h in lib/*.h; do $(CC) $(ALL_CFLAGS) -fsyntax-only -x c $$h || exit 1; done

# After an intended compiler change: rewrite tests/golden/*.ok, then review `git diff tests/golden`.
golden-update: mcpsec
	tests/golden/run --update

# The daemon built without BPF, as make WITH_BPF=0 builds it (tests/bats/320-drops.bats runs it).
nobpf:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/nobpf WITH_BPF=0 $(BUILD)/nobpf/san/mcpsecd

# The raw-netlink floors apply and re-apply are measured against (bench/apply-10k.sh).
$(BUILD)/nlfloor: bench/nlfloor.c $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) $(HARDEN_LD) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(PKG_LIBS) $(LDLIBS)

# What mcpsecd spends deciding a staged list's new flow (bench/stage-hub.sh).
$(BUILD)/stagedecide: bench/stagedecide.c $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) $(HARDEN_LD) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(PKG_LIBS) $(LDLIBS)

bench: mcpsec $(BUILD)/nlfloor $(BUILD)/stagedecide
	bench/apply-10k.sh
	bench/stage-hub.sh

# Programs, man pages, units, completion, schemas and examples. The package (debian/rules)
# installs with PREFIX=/usr and adds /etc/mcpsec and /var/lib/mcpsec (0700).
install: mcpsec mcpsecd
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPLETIONDIR) \
		$(DESTDIR)$(DATADIR)/schema $(DESTDIR)$(DOCDIR)/examples/host-a $(DESTDIR)$(DOCDIR)/examples/host-b \
		$(DESTDIR)$(DOCDIR)/examples/mcp-listing $(DESTDIR)$(DOCDIR)/contrib
	install -m 0755 mcpsec $(DESTDIR)$(BINDIR)/mcpsec
	install -m 0755 mcpsecd $(DESTDIR)$(BINDIR)/mcpsecd
	for m in mcpsec mcpsecd; do \
		sed 's|@VERSION@|$(VERSION)|g' doc/$$m.8 >$(DESTDIR)$(MANDIR)/man8/$$m.8 && chmod 0644 $(DESTDIR)$(MANDIR)/man8/$$m.8 || exit 1; \
	done
	sed 's|@VERSION@|$(VERSION)|g' doc/mcpsec.yaml.5 >$(DESTDIR)$(MANDIR)/man5/mcpsec.yaml.5 && chmod 0644 $(DESTDIR)$(MANDIR)/man5/mcpsec.yaml.5
	for u in mcpsecd.service mcpsecd.path; do \
		sed 's|@BINDIR@|$(BINDIR)|g; s|@STATEDIR@|$(STATEDIR)|g' systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 completion/mcpsec $(DESTDIR)$(COMPLETIONDIR)/mcpsec
	install -m 0644 completion/mcpsecd $(DESTDIR)$(COMPLETIONDIR)/mcpsecd
	install -m 0644 schema/*.schema.json $(DESTDIR)$(DATADIR)/schema/
	for d in host-a host-b mcp-listing; do install -m 0644 examples/$$d/* $(DESTDIR)$(DOCDIR)/examples/$$d/ || exit 1; done
	install -m 0644 contrib/grafana-dashboard.json $(DESTDIR)$(DOCDIR)/contrib/grafana-dashboard.json
	install -m 0644 doc/guide.md $(DESTDIR)$(DOCDIR)/guide.md

# The Debian package, built from a copy of this tree (dpkg-buildpackage cleans the tree it runs
# in): build/deb/mcpsec_VERSION_ARCH.deb.
deb:
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	tar -cf - --exclude=./build --exclude=./.git --exclude=./mcpsec --exclude=./mcpsecd --exclude='./*.d' . | tar -C $(BUILD)/deb/src -xf -
	cd $(BUILD)/deb/src && dpkg-buildpackage -us -uc -b
	@ls $(BUILD)/deb/*.deb

clean:
	rm -rf $(BUILD) mcpsec mcpsecd

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(SLIB_OBJ:.o=.d) $(SCMD_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(SDAEMON_OBJ:.o=.d) $(FLIB_OBJ:.o=.d) $(SFAULT_OBJ:.o=.d)
