#!/usr/bin/env bash
# The stm32flash commands of docs/flashing.md ("Without a debug probe: the ROM bootloader")
# run one after the other on a chip that is not reset in between (the user sets BOOT0 = 1 and
# resets once). The ROM bootloader measures the baud rate on the first 0x7F after a reset and
# keeps it until the next reset (AN2606, AN3155); stm32flash says so in its help for -c: "Baud
# rate must be kept the same as the first init". A command without -b runs at stm32flash's
# default, 57600 baud; a later one with -b 115200 would then talk to a bootloader that listens
# at 57600: "Failed to init device.", and the factory image is never written.
# usage: flashing_doc_check.sh SOURCE_DIR
set -euo pipefail
doc=$1/docs/flashing.md
fail() { echo "FAIL: $*"; exit 1; }
# The stm32flash command lines of the sh blocks, in order.
mapfile -t cmds < <(awk '/^```sh/ { inblock = 1; next } /^```/ { inblock = 0 } inblock && /^stm32flash / { sub(/[[:space:]]+#.*/, ""); print }' "$doc")
[ "${#cmds[@]}" -ge 2 ] || fail "$doc: expected the stm32flash commands (erase, write), found ${#cmds[@]}"
rates=()
for c in "${cmds[@]}"; do
  rate=57600  # stm32flash's default (-b)
  if [[ $c =~ -b[[:space:]]+([0-9]+) ]]; then rate=${BASH_REMATCH[1]}; fi
  rates+=("$rate")
  echo "$rate baud: $c"
done
for r in "${rates[@]}"; do
  [ "$r" = "${rates[0]}" ] || fail "$doc: the stm32flash commands, run without a reset in between, use ${rates[*]} baud: the ROM bootloader keeps the first rate until a reset, so the later command cannot talk to it"
done
echo "flashing doc ok"
