# Top-level entry points. Each target first runs the idempotent dependency step.
#   make test    build host + firmware (both layouts) and run every test through ctest
#   make demo    the main job: one full update of each layout
#   make sizes   text+data of every firmware image against its region
#   make bench   the figures in docs/benchmarks.md
MAKEFLAGS += --no-print-directory
BUILD    := $(CURDIR)/build
HOST     := $(BUILD)/host
FIRMWARE := $(BUILD)/firmware
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps host firmware test demo sizes bench clean

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
