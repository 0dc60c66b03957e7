# smartmx.exim: one entry point for the lab and the tests.
#   make lab     start the three-host demo lab and run site.yml on it
#   make test    every test: lint, sanity, pytest, the lab check, molecule
# The tools come from .venv (see requirements-dev.txt) when it exists.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

COLLECTION_LINK := .cache/collections/ansible_collections/smartmx/exim
LAB_INVENTORY := lab/inventory.yml
LAB_NAME := smartmx-lab
SUITES ?= bookworm trixie
# What `make test` runs, in this order.
TEST_STEPS := lint sanity unit lab-check molecule

.PHONY: help collection image debs lab lab-down lab-check lint sanity unit molecule test clean

help:
	@echo "make lab       build images if needed, start the lab, run site.yml on it"
	@echo "make lab-down  stop and remove the lab containers and network"
	@echo "make test      $(TEST_STEPS)"
	@echo "make lab-check from no lab: make lab, make lab again (nothing changes), make lab-down"
	@echo "make lint | sanity | unit | molecule | image | collection | clean"

# The collection resolves live from the checkout: ansible.cfg points
# collections_path at .cache/collections.
collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@if [ ! -L $(COLLECTION_LINK) ] || [ "$$(readlink $(COLLECTION_LINK))" != ../../../.. ]; then \
	    rm -rf $(COLLECTION_LINK) && ln -s ../../../.. $(COLLECTION_LINK); fi

image: collection
	lab/images/build.sh $(SUITES)

lab: collection
	lab/images/build.sh bookworm
	ansible-playbook -i $(LAB_INVENTORY) lab/up.yml lab/prepare.yml site.yml lab/verify.yml lab/verify_mail.yml
	@lab/status.sh $(LAB_NAME)

lab-down: collection
	@ids=$$(docker ps -aq --filter label=smartmx.lab=$(LAB_NAME)); \
	    [ -z "$$ids" ] || docker rm -f -v $$ids >/dev/null
	@ids=$$(docker network ls -q --filter label=smartmx.lab=$(LAB_NAME)); \
	    [ -z "$$ids" ] || docker network rm $$ids >/dev/null
	@echo "lab $(LAB_NAME) removed"

# The README's first command, checked as a new user meets it (lab/check.sh).
lab-check: collection
	lab/check.sh

lint: collection
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .
	shellcheck -x $$(git ls-files '*.sh') .ci/run .ci/sanity .ci/molecule

sanity: collection
	.ci/sanity

# Unit tests and the differential tests (these start lab containers).
unit: collection image
	pytest tests/

# Every scenario, in lanes that run side by side (.ci/molecule): scenarios
# that share hosts (default and failover: the base platforms) share a lane.
# The patched exim is built first, once (debs), for every lane to take.
# `default` is not run by `make molecule`: `make lab-check` (the step before it
# in `make test`) runs the same playbooks (lab/boot.yml, lab/prepare.yml, a
# second time with every recap changed=0, lab/verify.yml), and site.yml on top.
# `make molecule MOLECULE_LANES=default` or `molecule test` runs it.
# MOLECULE_LANES given on the command line runs just those scenarios.
MOLECULE_LANES ?= failover,exim_build drift,sync
MOLECULE_ELSEWHERE ?= default
MOLECULE_FLAGS := $(if $(filter file,$(origin MOLECULE_LANES)),--complete --elsewhere $(MOLECULE_ELSEWHERE))
debs: collection image
	python tests/differential/patched_exim.py

molecule: collection image debs
	.ci/molecule $(MOLECULE_FLAGS) $(MOLECULE_LANES)

# Runs every step even after a failure, prints how long each took, and
# fails if any step failed.
test: collection image
	@failed=""; \
	for step in $(TEST_STEPS); do \
	    start=$$(date +%s); \
	    echo "=== make $$step"; \
	    if $(MAKE) --no-print-directory $$step; then result=ok; else result=FAILED; failed="$$failed $$step"; fi; \
	    echo "=== make $$step: $$result in $$(( $$(date +%s) - start ))s"; \
	done; \
	if [ -n "$$failed" ]; then echo "=== make test FAILED:$$failed"; exit 1; fi; \
	echo "=== make test: all steps passed"

# Everything the lab, the scenarios and the tests made: containers and
# networks (by label, by name prefix, by lab image), the lab images and the
# images built on them (they inherit the smartmx.recipe label), the sanity
# copy. Other Docker objects are left alone.
clean:
	-@if command -v molecule >/dev/null; then molecule destroy --all >/dev/null 2>&1 || true; fi
	@ids=$$( { docker ps -aq --filter label=smartmx.lab; docker ps -aq --filter name=^/smartmx-; \
	    for img in $$( { docker image ls -q 'smartmx-lab/*'; docker image ls -q --filter label=smartmx.recipe; } | sort -u); do \
	        docker ps -aq --filter ancestor=$$img; done; } | sort -u); \
	    [ -z "$$ids" ] || docker rm -f -v $$ids >/dev/null; \
	    echo "removed $$(echo $$ids | wc -w) container(s)"
	@ids=$$(docker network ls -q --filter label=smartmx.lab); \
	    [ -z "$$ids" ] || docker network rm $$ids >/dev/null; \
	    echo "removed $$(echo $$ids | wc -w) network(s)"
	@refs=$$( { docker image ls --format '{{.Repository}}:{{.Tag}}' 'smartmx-lab/*'; \
	    docker image ls --format '{{.Repository}}:{{.Tag}}' --filter label=smartmx.recipe; } | grep -v '<none>' | sort -u); \
	    [ -z "$$refs" ] || docker rmi $$refs >/dev/null; \
	    echo "removed image(s): $$(echo $$refs)"
	@for pass in 1 2 3; do \
	    ids=$$(docker image ls -q --filter dangling=true --filter label=smartmx.recipe | sort -u); \
	    [ -n "$$ids" ] || break; \
	    docker rmi $$ids >/dev/null || true; \
	done; echo "removed superseded lab images"
	rm -rf .cache/sanity
