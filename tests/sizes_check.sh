#!/usr/bin/env bash
# The test make_sizes: `make sizes` prints every image's text+data as arm-none-eabi-size counts
# it, against its region, and the bootloaders' verdict on their size goal agrees with the figures.
# usage: sizes_check.sh FIRMWARE_BUILD_DIR
set -euo pipefail
fw=$1
out=$(cmake --build "$fw" --target sizes 2>&1) || { echo "$out"; echo "FAIL: the sizes target"; exit 1; }
fail() { echo "$out"; echo "FAIL: $*"; exit 1; }
lines=0
while read -r name used _ region _; do
  elf="$fw/$name.elf"
  [ -f "$elf" ] || fail "$name: no $elf"
  want=$(arm-none-eabi-size "$elf" | awk 'NR == 2 { print $1 + $2 }')
  [ "$used" = "$want" ] || fail "$name: printed $used B, arm-none-eabi-size says $want B"
  line=$(grep -E "^$name " <<<"$out")
  case $name in
    */bootloader)
      [ "$region" = 8192 ] || fail "$name: region $region, not 8 KB"
      goal=$(sed -E 's/.*goal ([0-9]+) B.*/\1/' <<<"$line")
      if [ "$used" -le "$goal" ]; then grep -q "goal $goal B: met" <<<"$line" || fail "$name: verdict"
      else grep -q "goal $goal B: NOT met" <<<"$line" || fail "$name: verdict"; fi ;;
  esac
  lines=$((lines + 1))
done < <(grep -E '^(internal|external)/' <<<"$out")
[ "$lines" -ge 6 ] || fail "only $lines images listed"
echo "sizes ok ($lines images)"
