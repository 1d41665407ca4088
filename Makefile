# Every target does its own set-up (scripts/dev.sh): on a fresh Debian/Ubuntu machine `make demo` and
# `make test` install what is missing and start private PostgreSQL/Redis servers when none answer.
.PHONY: demo test down lint format bench setup env loadtest

demo:
	@scripts/dev.sh demo

test:
	@scripts/dev.sh test

down:
	@scripts/dev.sh down

setup:
	@scripts/dev.sh setup

env:
	@scripts/dev.sh env

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	DEBUG=1 .venv/bin/mypy .

format: setup
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench:
	@scripts/dev.sh bench $(BENCH)

loadtest:
	@scripts/dev.sh loadtest
