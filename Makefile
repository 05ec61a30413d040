# Anshim — `make run` starts a demo instance, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Django 6 needs Python >= 3.12: take the newest suitable interpreter on PATH or in pyenv.
PYTHON ?= $(shell for c in python3.12 python3.13 $$HOME/.pyenv/versions/3.12*/bin/python3 \
	$$HOME/.pyenv/versions/3.13*/bin/python3 /usr/local/bin/python3.1[23] python3; do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' \
	2>/dev/null; then echo $$c; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
ANSHIM := $(BIN)/anshim
PG_URL ?= postgres://root@127.0.0.1:5432/test
# Debian packages: Chromium for browser tests, FFmpeg headers for the vpdq reference binding,
# CJK fonts so Korean renders in screenshots and PDFs, R's survey package (the reference of the
# statistics tests and bench-stats).
APT_PACKAGES := chromium fonts-noto-cjk nodejs poppler-utils pkg-config libavcodec-dev libavformat-dev libavutil-dev \
	libswscale-dev libavdevice-dev libavfilter-dev r-base-core r-cran-survey

.PHONY: help run install install-test system-deps test test-sqlite test-postgres lint \
	bench bench-fingerprint bench-match bench-exchange bench-scan bench-robustness bench-snapshot bench-stats \
	bench-reports bench-pages worker clean

help:
	@echo "make run    - install, migrate, load demo data, serve on http://127.0.0.1:8000"
	@echo "make test   - install test dependencies and run the whole suite (SQLite, then PostgreSQL)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - all benchmarks (see bench/)"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then echo "Python >= 3.12 is required (Django 6)." >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# vpdq (a test reference) builds against FFmpeg's headers: Debian packages come first.
$(VENV)/.installed-test: pyproject.toml clients/threatexchange/pyproject.toml | $(BIN)/python system-deps
	$(BIN)/pip install --quiet -e '.[test]' -e ./clients/threatexchange
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test system-deps tests/portal/axe/node_modules

# axe-core (accessibility checks in the portal tests), pinned by its package-lock.json.
tests/portal/axe/node_modules: tests/portal/axe/package-lock.json | system-deps
	npm ci --prefix tests/portal/axe --no-audit --no-fund --silent
	touch $@

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# NodeSource's nodejs ships npm itself; Debian's nodejs needs the separate npm package.
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }

# A local demo: ANSHIM_DEMO=1 lets every process use the development SECRET_KEY and key files
# (production mode refuses them). The worker and the scheduler are restarted if they die.
# make run DEMO_VOLUME=N: how many fictitious cases the dashboards and reports show.
DEMO_VOLUME ?= 2000
run: export ANSHIM_DEMO = 1
run: install
	$(ANSHIM) migrate --noinput
	$(ANSHIM) demo --volume $(DEMO_VOLUME)
	@echo "Starting the task worker, the scheduler and the server on http://127.0.0.1:8000 (Ctrl-C stops all)"
	@echo "Staff sign in at http://127.0.0.1:8000/staff/ with a login above; the victim portal is http://127.0.0.1:8000/"
	@trap 'kill 0' EXIT INT TERM; \
		while true; do $(ANSHIM) worker --queue-name '*'; \
			echo "worker exited ($$?), restarting in 5 s" >&2; sleep 5; done >>var/worker.log 2>&1 & \
		while true; do $(ANSHIM) periodic; \
			echo "periodic exited ($$?), restarting in 5 s" >&2; sleep 5; done >>var/periodic.log 2>&1 & \
		ANSHIM_DEBUG=1 $(ANSHIM) runserver 127.0.0.1:8000

worker: install
	$(ANSHIM) worker --queue-name '*'

test: install-test test-sqlite test-postgres

test-sqlite:
	$(BIN)/pytest -q

# The same suite against PostgreSQL when one answers (it does on the development machines and CI).
test-postgres:
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
		$(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
		echo "== PostgreSQL: $(PG_URL)"; \
		DATABASE_URL=$(PG_URL) $(BIN)/pytest -q -m "not browser and not engine and not interop"; \
	else echo "== PostgreSQL not reachable on 127.0.0.1:5432: skipped"; fi

lint: install-test
	$(BIN)/ruff check src tests bench clients
	$(BIN)/mypy src
	cd clients/threatexchange && ../../$(BIN)/mypy src

bench: bench-fingerprint bench-match bench-exchange bench-scan bench-robustness bench-stats bench-reports \
	bench-pages

$(VENV)/.installed-bench: pyproject.toml | $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench-fingerprint: install-test $(VENV)/.installed-bench
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(BENCH_APT_PACKAGES)"
	$(BIN)/python -m bench.bench_fingerprint

# 1M and 10M hashes, ours and threatexchange's PDQIndex (about 9 GB at 10M) in one run.
bench-match: install-test $(VENV)/.installed-bench
	$(BIN)/python bench/bench_match.py --sizes 1000000,10000000 --queries 2000 --reference-queries 1000

clean:
	rm -rf $(VENV) var build *.egg-info

# 1M fingerprints in a throwaway PostgreSQL database, gunicorn, concurrent 100-hash lookups;
# then threatexchange's PDQIndex (what HMA searches) on the same bank and batches.
bench-exchange: install-test $(VENV)/.installed-bench
	$(BIN)/python bench/bench_exchange.py

# A generated local site of 5,000 images: crawl + fingerprint + match vs fingerprinting alone.
bench-scan: install-test
	$(BIN)/python bench/bench_scan.py

# Benign photos from Debian's wallpaper packages, scikit-image's images and conformance videos.
BENCH_APT_PACKAGES := desktop-base sway-backgrounds mypaint-data-extras lomiri-wallpapers
bench-robustness: install-test $(VENV)/.installed-bench
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(BENCH_APT_PACKAGES)"
	$(BIN)/python -m bench.bench_robustness

# Build once, map everywhere at 10M entries (issue 15): worker ready time, memory per extra
# process, withdrawal visibility across processes.
bench-snapshot: install-test
	$(BIN)/python -m bench.bench_snapshot

# A school survey report (every question by grade, sex and school level) at 4,012 and 400,000
# responses, ours vs R's survey on one core; ours alone at 4,000,000 within 4 GiB.
bench-stats: install-test
	$(BIN)/python bench/bench_stats.py --sizes 4012,400000 --big 4000000

# The supervisor dashboard and the annual tables at 2,000 and 100,000 generated cases, on SQLite
# and on PostgreSQL (BENCH_POSTGRES_URL, a database of its own that the bench drops and creates).
bench-reports: install-test
	$(BIN)/python bench/bench_reports.py --sizes 2000,100000

# The case list, the case page, the erasure page and the portal status page with the demo at
# 2,000 cases (200 beside it as the reference), through the test client as the role using each.
bench-pages: install-test
	$(BIN)/python bench/bench_pages.py --sizes 200,2000
