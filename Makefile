# The two README commands: `make demo` and `make test`. Both do their own set-up.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
INVENTORY ?= examples/inventory.yml

.PHONY: setup demo demo-clean test unit sanity lint labtest molecule bench clean

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh $(INVENTORY)

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
