# Front door. Every target sets up what it needs first (scripts/bootstrap).
BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
JOBS       ?= $(shell nproc)

.PHONY: all bootstrap build asan run test test-release test-asan bench lint clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTSR_SANITIZE=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: bootstrap
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTSR_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./$(BUILD)/tessera serve

lint:
	@scripts/check-banned

test: lint test-release test-asan

test-release: build
	@scripts/e2e-npm
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@# The per-file vector counts (ctest keeps every test's output in its log).
	@grep -h "cases:" $(BUILD)/Testing/Temporary/LastTest.log || true

test-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

bench: bootstrap
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DTSR_SANITIZE=OFF -DTSR_BENCH=ON >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	./$(BENCH_BUILD)/jose_bench
	TESSERA_BIN=$(BENCH_BUILD)/tessera BENCH_BUILD=$(BENCH_BUILD) bench/http/run.sh
	TESSERA_BIN=$(BENCH_BUILD)/tessera BENCH_BUILD=$(BENCH_BUILD) bench/http/cluster.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD)
