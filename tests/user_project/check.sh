#!/usr/bin/env bash
# The test user_project: a firmware project outside the OTA tree (this folder) builds against it
# as docs/client-library.md says, and its images work: the factory image boots v1 on the emulated
# board, and `ota push` updates it to v2 over a pty. Built with a receive ring of 10 frames
# (OTA_USART1_RX_RING, 2,640 bytes: a window of 9, the ring never exactly full) instead of 23. The program in docs/client-library.md ("Integration") is
# cut out of the document, built and updated too, and so is a slow application.
# usage: check.sh OTA_TREE BUILD_DIR BLUEPILL OTA
set -euo pipefail
tree=$1 build=$2 bp=$3 ota=$4
work=$(mktemp -d)
board=
cleanup() {
  if [ -n "$board" ]; then kill "$board" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$build"
awk '/^## Integration/ { in_section = 1 } in_section && /^```$/ { exit } in_code { print }
     in_section && /^```cpp$/ { in_code = 1 }' "$tree/docs/client-library.md" >"$work/docs_sample.cpp"
grep -q "client.boot();" "$work/docs_sample.cpp" || fail "no program in docs/client-library.md, Integration"
ring=$((10 * 264))
# Debug, where a user starts: the tree still builds its libraries and bootloader for size.
cmake -S "$tree/tests/user_project" -B "$build" -DOTA_DIR="$tree" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_TOOLCHAIN_FILE="$tree/cmake/arm-none-eabi.cmake" -DOTA_USART1_RX_RING=$ring \
  -DOTA_DOCS_SAMPLE="$work/docs_sample.cpp" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configure"; }
cmake --build "$build" -j 2 >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "build"; }
# An image of one layout linked with the other layout's board library is refused at configure time.
if cmake -S "$tree/tests/user_project" -B "$work/slip" -DOTA_DIR="$tree" -DMY_DEVICE_LAYOUT_SLIP=ON \
     -DCMAKE_TOOLCHAIN_FILE="$tree/cmake/arm-none-eabi.cmake" >"$work/slip.log" 2>&1; then
  fail "a LAYOUT internal image with ota_board_external configured"
fi
grep -q "LAYOUT internal with ota_board_external" "$work/slip.log" || fail "no clear error: $(cat "$work/slip.log")"
# The two slips of a first configure, each with an error that names the fix.
if cmake -S "$tree/tests/user_project" -B "$work/host" -DOTA_DIR="$tree" >"$work/host.log" 2>&1; then
  fail "configured without the ARM toolchain"
fi
grep -q "CMAKE_TOOLCHAIN_FILE=$tree/cmake/arm-none-eabi.cmake" "$work/host.log" ||
  fail "no clear error without the toolchain: $(cat "$work/host.log")"
if cmake -S "$tree/tests/user_project" -B "$work/no-dir" \
     -DCMAKE_TOOLCHAIN_FILE="$tree/cmake/arm-none-eabi.cmake" >"$work/no-dir.log" 2>&1; then
  fail "configured without OTA_DIR"
fi
grep -q "is not the OTA source tree" "$work/no-dir.log" || fail "no clear error without OTA_DIR: $(cat "$work/no-dir.log")"
for f in internal/my-app.elf internal/my-app.bin internal/my-app.hex internal/my-app-v2.elf internal/my-app-own-tick.elf \
         internal/bootloader.elf internal/factory.hex internal/factory.bin; do
  [ -s "$build/$f" ] || fail "$f was not built"
done
[ ! -e "$build/internal/app.elf" ] || fail "the OTA tree's example application was built too"
# `sizes` shows the user's images and the bootloader, without the OTA project's own size goals.
sizes=$(cmake --build "$build" --target sizes 2>&1) || fail "sizes: $sizes"
grep -q "internal/my-app " <<<"$sizes" && grep -q "internal/bootloader " <<<"$sizes" || fail "sizes: $sizes"
if grep -q "goal" <<<"$sizes"; then fail "a size goal in a user's project: $sizes"; fi
for f in my-app bootloader; do
  size=$(arm-none-eabi-nm -S -C "$build/internal/$f.elf" | awk '/usart1::.*ring$/ { print $2 }')
  [ -n "$size" ] && [ $((16#$size)) = "$ring" ] || fail "$f.elf has a receive ring of '$size' bytes, not OTA_USART1_RX_RING=$ring"
done

out=$("$bp" -q --flash "$work/flash.bin" --image "$build/internal/factory.hex" --exit-on "my app v1" \
  --run-us 3000000 </dev/null | tr -d '\000') || fail "the board stopped: $out"
grep -q "^my app v1" <<<"$out" || fail "no v1 banner: $out"

# An application with its own SysTick_Handler links, starts and its tick runs.
out=$("$bp" -q --flash "$work/own-tick.bin" --image "$build/internal/bootloader.elf" \
  --image "$build/internal/my-app-own-tick.elf" --exit-on "my app v1" --run-us 3000000 </dev/null |
  tr -d '\000') || fail "the board stopped: $out"
grep -q "^own tick: my app v1" <<<"$out" || fail "no banner from the application with its own tick: $out"

# push_v2 OTA_FILE FLASH_FILE [BLUEPILL ARGS...]: runs the board on a pty and pushes the image,
# a v2 (v$want, when set), to it.
push_v2() {
  local image=$1 flash=$2 pty version=${want:-2}
  shift 2
  "$bp" -q --flash "$flash" --pty "$@" >"$work/board.log" 2>&1 &
  board=$!
  for _ in $(seq 100); do grep -q "USART1 on " "$work/board.log" && break; sleep 0.1; done
  pty=$(grep -m1 "USART1 on " "$work/board.log" | awk '{print $NF}')
  [ -n "$pty" ] || fail "no pty: $(cat "$work/board.log")"
  "$ota" push "$image" --port "$pty" --timeout 30 ${push_args:-} >"$work/push.log" 2>&1 ||
    { cat "$work/push.log"; fail "push"; }
  grep -q "upgraded.*v$version " "$work/push.log" || fail "push did not upgrade to v$version: $(cat "$work/push.log")"
  if [ -n "${no_resends:-}" ]; then grep -q ", 0 re-sent)" "$work/push.log" || fail "frames re-sent: $(cat "$work/push.log")"; fi
  kill -TERM "$board"
  wait "$board" 2>/dev/null || true
  board=
}

"$ota" image build "$build/internal/my-app-v2.elf" -o "$work/v2.ota" >/dev/null
push_v2 "$work/v2.ota" "$work/flash.bin"

out=$("$bp" -q --flash "$work/flash.bin" --exit-on "my app v2" --run-us 3000000 </dev/null | tr -d '\000') ||
  fail "the board stopped after the update: $out"
grep -q "^my app v2" <<<"$out" || fail "no v2 banner after the update: $out"

# A slow application (500 ms of its own work in every pass of its loop), in real time: it reads
# all the ring holds in each pass, so the download keeps pace (one buffer per pass would take
# 64 B per 500 ms, and the server's re-sends would overrun the ring). The v2 it takes ends in 8 KB
# without a 0x00 (a table, a font, compressed data): its DATA frames are the largest, 264 bytes,
# and a window of them arrives while the loop works; one that filled the ring exactly would read
# as empty and be lost, each time it is sent again.
python3 - "$build/internal/my-app-v2.bin" "$work/v2-table.bin" <<'PY'
import sys
open(sys.argv[2], "wb").write(open(sys.argv[1], "rb").read() + b"\x5a" * 8192)
PY
"$ota" image build "$work/v2-table.bin" -o "$work/v2-table.ota" >/dev/null
no_resends=1 push_v2 "$work/v2-table.ota" "$work/busy.bin" --realtime --image "$build/internal/bootloader.elf" \
  --image "$build/internal/my-app-busy.elf"

# The documentation's program, built as its CMake says, v1 to v12 (a version of two digits).
"$ota" image build "$build/internal/docs-sample-v12.elf" -o "$work/docs-v12.ota" >/dev/null
want=12 push_v2 "$work/docs-v12.ota" "$work/docs.bin" --image "$build/internal/bootloader.elf" \
  --image "$build/internal/docs-sample-v1.elf"
out=$("$bp" -q --flash "$work/docs.bin" --run-us 500000 </dev/null | tr -d '\000') ||
  fail "the documentation's program stopped after the update: $out"
grep -q $'^my app v12\r$' <<<"$out" || fail "no v12 banner from the documentation's program: $out"
# The link at another rate (a radio module's 9600): bootloader and application built with
# OTA_USART1_BAUD=9600 run USART1 at it (the board, told the far end's rate, stops at any other),
# and a push at 9600 updates v1 to v2. A rate the bootloader's RECOVER window cannot take is
# refused at configure time.
if cmake -S "$tree/tests/user_project" -B "$work/baud-low" -DOTA_DIR="$tree" -DOTA_USART1_BAUD=4800 \
     -DCMAKE_TOOLCHAIN_FILE="$tree/cmake/arm-none-eabi.cmake" >"$work/baud-low.log" 2>&1; then
  fail "configured with OTA_USART1_BAUD=4800"
fi
grep -q "OTA_USART1_BAUD=4800: want one of 9600, " "$work/baud-low.log" || fail "no clear error: $(cat "$work/baud-low.log")"
cmake -S "$tree/tests/user_project" -B "$work/baud" -DOTA_DIR="$tree" -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DCMAKE_TOOLCHAIN_FILE="$tree/cmake/arm-none-eabi.cmake" -DOTA_USART1_BAUD=9600 >"$work/baud.log" 2>&1 ||
  { cat "$work/baud.log"; fail "configure at 9600 baud"; }
cmake --build "$work/baud" -j 2 --target factory_internal my_app_v2 >"$work/baud.log" 2>&1 ||
  { tail -40 "$work/baud.log"; fail "build at 9600 baud"; }
"$ota" image build "$work/baud/internal/my-app-v2.elf" -o "$work/v2-9600.ota" >/dev/null
push_args="--baud 9600" push_v2 "$work/v2-9600.ota" "$work/baud.bin" --baud 9600 \
  --image "$work/baud/internal/factory.hex"
# ... and its bootloader hears RECOVER at 9600 after a press of the reset button: the way back for
# a device whose application hangs.
"$bp" -q --flash "$work/baud.bin" --pty --realtime --baud 9600 >"$work/board.log" 2>&1 &
board=$!
for _ in $(seq 100); do grep -q "USART1 on " "$work/board.log" && break; sleep 0.1; done
pty=$(grep -m1 "USART1 on " "$work/board.log" | awk '{print $NF}')
[ -n "$pty" ] || fail "no pty: $(cat "$work/board.log")"
"$ota" status --port "$pty" --baud 9600 --recover --json --timeout 20 >"$work/status.log" 2>&1 &
status=$!
for _ in $(seq 12); do
  sleep 1
  kill -0 "$status" 2>/dev/null || break
  kill -USR1 "$board"
done
wait "$status" || fail "status --recover at 9600: $(cat "$work/status.log")"
grep -q '"role":"recovery"' "$work/status.log" || fail "the bootloader did not answer RECOVER at 9600: $(cat "$work/status.log")"
kill -TERM "$board"
wait "$board" 2>/dev/null || true
board=
# Last, as it leaves the build tree with an image that does not link: a link that fails (v1
# grown past its region) leaves no .bin or .hex of the earlier build behind.
[ -s "$build/internal/my-app.bin" ] || fail "no my-app.bin before the failing link"
cmake "$build" -DMY_DEVICE_TOO_LARGE=ON >"$work/large.log" 2>&1 || { cat "$work/large.log"; fail "configure large"; }
if cmake --build "$build" --target my_app_v1 >"$work/large.log" 2>&1; then fail "an image past its region linked"; fi
[ ! -e "$build/internal/my-app.bin" ] && [ ! -e "$build/internal/my-app.hex" ] ||
  fail "a failed link left the earlier my-app.bin/.hex: $(tail -5 "$work/large.log")"
echo "user project ok"
