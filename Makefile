# Cruxlog: the two commands are `make up` (stack + services + demo) and `make test`.
# Everything they need is installed by infra/local/stack.sh; nothing is assumed present.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
STACK := infra/local/stack.sh
SERVICES := infra/local/services.sh
VENV := $(or $(CRUXLOG_LOCAL_DIR),$(CURDIR)/.local)/venv
WITH_ENV = eval "$$(bash $(STACK) env)" &&
export CARGO_TERM_COLOR ?= never

.PHONY: up down test stack toolchain build lint test-rust test-python status demo fuzz bench prune-tests

## up: install what is missing, build, start Kafka, PostgreSQL and the services, run the demo.
up: stack build
	@$(WITH_ENV) bash $(SERVICES) start
	@$(WITH_ENV) bash infra/demo/demo.sh

## test: install what is missing, start the stack, run every Rust and Python test and lint.
## Test databases and topics are dropped before and, when everything passed, after the run
## (thousands of leftover partitions make the next broker start take minutes).
test: stack prune-tests build lint test-rust test-python
	@bash $(STACK) prune-tests

## down: stop the services and the stack (data is kept; `infra/local/stack.sh reset` wipes it).
down:
	@bash $(SERVICES) stop
	@bash $(STACK) stop

status:
	@bash $(STACK) status
	@bash $(SERVICES) status

demo:
	@$(WITH_ENV) bash infra/demo/demo.sh

stack:
	@bash $(STACK) install
	@bash $(STACK) start

# The pinned toolchain (rust-toolchain.toml) is the machine's stable one; link it if rustup
# does not know it by number (toolchain downloads are not possible here).
toolchain:
	@rustup run "$$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)" rustc --version >/dev/null 2>&1 || \
	  rustup toolchain link "$$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)" "$$(rustc +stable --print sysroot)"

build: toolchain
	cargo build --workspace --all-targets

lint: toolchain
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check analyzers/python infra/tests
	$(VENV)/bin/ruff format --check analyzers/python infra/tests
	cd analyzers/python && $(VENV)/bin/mypy --strict src tests

test-rust: toolchain
	@$(WITH_ENV) cargo test --workspace

## prune-tests: drop the databases and topics earlier test runs left behind.
prune-tests:
	@bash $(STACK) prune-tests

test-python:
	@$(WITH_ENV) $(VENV)/bin/python -m pytest analyzers/python infra/tests -q

## fuzz: run the Avro decoder fuzz target for FUZZ_SECONDS (needs nightly; installs cargo-fuzz).
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd schemas/fuzz && cargo +nightly fuzz run decode -- -max_total_time=$(FUZZ_SECONDS)

## bench: the benchmarks (release builds; they print figures and ratios, they do not pass or fail).
bench: stack bench-vision
	cargo bench -p cruxlog-schemas --bench codec
	@$(WITH_ENV) cargo bench -p cruxlog-projectors --bench catchup
	@$(WITH_ENV) cargo bench -p cruxlog-command-api --bench command_to_query
	@$(WITH_ENV) cargo bench -p cruxlog-command-api --bench load

## bench-vision: movement analysis figures (pipeline vs pose model fps, 60 s clip time, subsampling cost, back-view detection).
.PHONY: bench-vision
bench-vision:
	@bash $(STACK) install python
	$(VENV)/bin/python analyzers/python/bench/bench_vision.py
