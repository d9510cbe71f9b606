# The only commands a user needs. `make run` and `make test` install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
COMPOSE_VENV ?= $(VENV)-compose
DEB_PACKAGES := busybox-static docker-registry e2fsprogs iproute2 util-linux nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13 fuse3
PYTEST_ARGS ?=

.PHONY: install run test unit conformance robot bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@test -x $(COMPOSE_VENV)/bin/python || python3 -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/pip install -q $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["compose"]))')
	@touch $(STAMP)

run: install
	$(VENV)/bin/vic-ref up --workdir work/run --export

test: install
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory robot

unit: install
	$(PY) -m pytest vsphere_sim/tests vic_ref $(PYTEST_ARGS)

conformance: install
	$(PY) -m pytest conformance $(PYTEST_ARGS)

robot: install
	@if ls robot_suites/*/*.robot >/dev/null 2>&1; then \
		$(VENV)/bin/robot --outputdir robot_suites/output --pythonpath . robot_suites; \
	else echo "robot: no suites yet"; fi

# The same workload against another server: VSPHERE_URL/USER/PASSWORD (vim25) and DOCKER_HOST (docker); docs/bench.md.
# The report is written even when a benchmark fails; the status is pytest's.
bench: install
	@start=$$(date +%s); rc=0; \
	$(PY) -m pytest bench --benchmark-only --benchmark-json=bench/.results/latest.json -p no:randomly \
		$(PYTEST_ARGS) || rc=$$?; \
	$(PY) -m bench.report bench/.results/latest.json bench/report.md --elapsed $$(( $$(date +%s) - start )) \
		|| rc=$$?; \
	exit $$rc

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(COMPOSE_VENV) work robot_suites/output bench/.results
