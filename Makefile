# Top-level entry points. Each target first runs the idempotent dependency step.
#   make test    build host + firmware (both layouts) and run every test through ctest
#   make demo    the main job: one full update of each layout
#   make sizes   text+data of every firmware image against its region
#   make bench   the figures in docs/benchmarks.md
#   make test-sanitize  every test again, the host side built with ASan and UBSan (CI runs it)
MAKEFLAGS += --no-print-directory
BUILD    := $(CURDIR)/build
HOST     := $(BUILD)/host
FIRMWARE := $(BUILD)/firmware
SANITIZE := $(BUILD)/host-sanitize
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps host firmware test test-sanitize demo sizes bench clean

all: host firmware

deps:
	@scripts/install-deps

firmware: deps
	@cmake -S . -B $(FIRMWARE) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/arm-none-eabi.cmake -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
	@cmake --build $(FIRMWARE) -j $(JOBS)

host: deps firmware
	@cmake -S . -B $(HOST) -DOTA_FIRMWARE_DIR=$(FIRMWARE) >/dev/null
	@cmake --build $(HOST) -j $(JOBS)

test: host firmware
	@scripts/check-firmware-rate $(FIRMWARE) $@
	@cd $(HOST) && ctest --output-on-failure -j $(JOBS)

# A sanitizer report in a tool a test starts (ota, bluepill) aborts it (exit 134), which no test
# takes for an expected exit code.
test-sanitize: deps firmware
	@scripts/check-firmware-rate $(FIRMWARE) $@
	@cmake -S . -B $(SANITIZE) -DOTA_FIRMWARE_DIR=$(FIRMWARE) -DOTA_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(SANITIZE) -j $(JOBS)
	@cd $(SANITIZE) && ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=abort_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

demo: host firmware
	@scripts/check-firmware-rate $(FIRMWARE) $@
	@scripts/demo

sizes: firmware
	@cmake --build $(FIRMWARE) --target sizes

bench: host firmware
	@scripts/check-firmware-rate $(FIRMWARE) $@
	@scripts/bench

clean:
	rm -rf $(BUILD)
