# pam_totp: the two commands a new user needs, and the packaging.
#
#   make demo   try it: a sandboxed PAM login (nothing under /etc changes)
#   make test   the whole test suite (what CI runs)
#   make deb    build dist/libpam-totp_*.deb
#   make bench  side-by-side benchmarks against google-authenticator and pam_oath

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: all build demo test test-cargo test-fuzz test-package test-browser test-trixie lint po deb bench clean

all: build

build:
	$(CARGO) build --workspace --locked

demo:
	scripts/deps.sh demo
	$(CARGO) build --workspace --locked
	scripts/demo.sh

# Unit, integration (real libpam, oathtool, zbarimg, sshd) and CLI tests, a
# short run of every fuzz target, the package cycle (build, install,
# pam-auth-update, login, purge), and the Cockpit page in a real browser;
# then the package cycle, the LDAP store and the Cockpit page again on
# Debian 13.
test: test-cargo test-fuzz test-package test-browser test-trixie

test-cargo:
	scripts/deps.sh test
	$(CARGO) build --workspace --locked
	# The wipe test runs against the module as it ships.
	$(CARGO) build --release --locked -p pam_module -p pam_module_ldap
	$(CARGO) test --workspace --locked --no-fail-fast

test-fuzz:
	scripts/fuzz-smoke.sh 20

test-package: deb
	scripts/package-test.sh

test-browser: deb
	scripts/browser-test.sh

# In a Debian 13 chroot that debootstrap builds once (kept in target/trixie/):
# the package cycle, the LDAP store and the browser tests against Cockpit
# 337; TRIXIE_STEPS picks some of "package ldap cockpit".
test-trixie: deb
	scripts/trixie-chroot.sh scripts/trixie-test.sh

lint:
	$(CARGO) fmt --all -- --check
	/usr/bin/python3 scripts/copyright.py --check
	/usr/bin/python3 scripts/po.py check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

deb:
	scripts/build-deb.sh

# The Cockpit page's messages: the template from the sources, then each
# language merged with it (translate what msgmerge marks).
po:
	/usr/bin/python3 scripts/po.py pot
	for lang in $$(/usr/bin/python3 scripts/po.py languages); do \
	  msgmerge --quiet --update --backup=none --no-fuzzy-matching po/$$lang.po po/cockpit-totp.pot || exit 1; \
	done

bench:
	bench/compare

clean:
	$(CARGO) clean
	rm -rf dist
