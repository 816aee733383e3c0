# The two README commands: `make demo` and `make test`. Both do their own set-up.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
INVENTORY ?= examples/inventory.yml
# `make demo NODES=machine`: the same demo on systemd machine nodes over SSH.
NODES ?= namespace

.PHONY: setup demo demo-clean test unit sanity lint labtest molecule bench clean

setup:
	@scripts/setup.sh

demo: setup
	@L3HA_DEMO_NODES=$(NODES) scripts/demo.sh $(INVENTORY)

demo-clean: setup
	@lab/l3ha-lab down

test: setup
	@scripts/test.sh

# Single stages of `make test`, for development.
unit sanity lint labtest molecule: setup
	@scripts/test.sh $@

bench: setup
	@bench/run $(BENCH_ARGS)

clean: demo-clean
	rm -rf .build
