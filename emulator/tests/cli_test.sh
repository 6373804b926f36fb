#!/bin/sh
# The bluepill program: images, a persistent flash file, --exit-on, --cut-at-us, --cut-after,
# --lenient, --erase, --timing/--seed, the reset button (SIGUSR1), SIGTERM while waiting for gdb.
# usage: cli_test.sh BLUEPILL TEST_FW_DIR
set -eu
BP=$1
FW=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# Empties out/err before a board starts in the background: its own redirections truncate them
# only once it runs, and a wait for its output must not see an earlier board's.
fresh() { : >"$T/out"; : >"$T/err"; }

out=$("$BP" --image "$FW/hello.elf" --exit-on "pill" </dev/null 2>"$T/err")
[ "$out" = "hello from the blue pill" ] || fail "hello output: '$out' $(cat "$T/err")"

# Power cut in the middle of the page erase (zeros take ~27 ms, the erase 30 ms).
"$BP" --image "$FW/erase_loop.elf" --flash "$T/flash.bin" --cut-at-us 40000 </dev/null 2>"$T/err" || fail "cut run: $(cat "$T/err")"
grep -q "power cut" "$T/err" || fail "no power cut message: $(cat "$T/err")"
[ "$(stat -c %s "$T/flash.bin")" = 65536 ] || fail "flash file size"
page60() { od -An -v -tx1 -j 61440 -N 1024 "$T/flash.bin" | tr -s ' ' '\n' | grep -c "^$1\$" || true; }
ff=$(page60 ff)
[ "$ff" -gt 0 ] && [ "$ff" -lt 1024 ] || fail "page 60 should be torn, has $ff bytes 0xFF"

# Power on again from the file (no image): the program finishes the job.
"$BP" --flash "$T/flash.bin" --run-us 200000 </dev/null 2>"$T/err" || fail "second run: $(cat "$T/err")"
[ "$(page60 ff)" = 1024 ] || fail "page 60 not erased after the second run"

# An exact instruction count.
"$BP" --flash "$T/flash.bin" --cut-after 5000 </dev/null 2>"$T/err" || fail "cut-after: $(cat "$T/err")"
grep -Eq "power cut after 5000 instructions at [0-9]+ us" "$T/err" || fail "cut-after message: $(cat "$T/err")"

# An illegal flash write stops the board with an error and exit status 1.
if "$BP" --image "$FW/flash_nopg.elf" --run-us 1000 </dev/null 2>"$T/err"; then fail "illegal write not caught"; fi
grep -q "without FLASH_CR.PG" "$T/err" || fail "illegal write message: $(cat "$T/err")"
# --lenient: the same write is reported, and the program goes on to its end (its closing BKPT).
"$BP" --image "$FW/flash_nopg.elf" --lenient --run-us 1000 </dev/null 2>"$T/err" || fail "lenient run: $(cat "$T/err")"
grep -q "without FLASH_CR.PG" "$T/err" || fail "lenient: no error report: $(cat "$T/err")"
grep -q "BKPT 0x0 " "$T/err" || fail "lenient: the program did not run to its end: $(cat "$T/err")"

# --erase: a mark left in page 60 by an earlier factory programming is gone; without it, it stays.
printf 'MARK' >"$T/mark.bin"
"$BP" --image "$FW/hello.elf" --bin-base 0x0800F000 --image "$T/mark.bin" --flash "$T/e.bin" --exit-on pill </dev/null >/dev/null 2>"$T/err" || fail "mark: $(cat "$T/err")"
mark() { od -An -c -j 61440 -N 4 "$T/e.bin" | tr -d ' '; }
[ "$(mark)" = MARK ] || fail "mark not written: '$(mark)'"
"$BP" --flash "$T/e.bin" --image "$FW/hello.elf" --exit-on pill </dev/null >/dev/null 2>"$T/err" || fail "reload: $(cat "$T/err")"
[ "$(mark)" = MARK ] || fail "mark lost without --erase"
"$BP" --flash "$T/e.bin" --erase --image "$FW/hello.elf" --exit-on pill </dev/null >"$T/out" 2>"$T/err" || fail "erase: $(cat "$T/err")"
[ "$(cat "$T/out")" = "hello from the blue pill" ] || fail "after --erase: '$(cat "$T/out")'"
[ "$(od -An -tx1 -j 61440 -N 4 "$T/e.bin" | tr -d ' ')" = ffffffff ] || fail "--erase left '$(mark)'"

# --timing and --seed: 80 ms into erase_loop, how far the programming of page 61 has got. Typical
# timings: the same for every seed. Random ones: a seed repeats exactly, another seed differs.
zeros61() {
  rm -f "$T/t.bin"
  "$BP" --image "$FW/erase_loop.elf" --flash "$T/t.bin" --cut-at-us 80000 "$@" </dev/null 2>"$T/err" || fail "timing $*: $(cat "$T/err")"
  od -An -v -tx2 -j 62464 -N 1024 "$T/t.bin" | tr -s ' ' '\n' | grep -c '^0000$' || true
}
typ1=$(zeros61 --timing typ --seed 1)
[ "$(zeros61 --timing typ --seed 2)" = "$typ1" ] || fail "typical timings depend on the seed"
r1=$(zeros61 --timing random --seed 1)
cp "$T/t.bin" "$T/r1.bin"
[ "$(zeros61 --timing random --seed 1)" = "$r1" ] && cmp -s "$T/t.bin" "$T/r1.bin" || fail "--seed 1 does not repeat"
r2=$(zeros61 --timing random --seed 2)
[ "$r2" != "$r1" ] || fail "--seed 2 gives the same timings as --seed 1 ($r1)"
[ "$r1" != "$typ1" ] || [ "$r2" != "$typ1" ] || fail "--timing random gives typical timings ($typ1)"

# One board per flash file: a second one on the same file is refused (each would write its own
# copy at exit).
fresh
"$BP" --image "$FW/usart_rx.elf" --flash "$T/one.bin" </dev/null >"$T/out" 2>"$T/err" &
first=$!
for _ in $(seq 400); do [ -s "$T/out" ] && break; sleep 0.05; done
if "$BP" --flash "$T/one.bin" --run-us 1000 </dev/null 2>"$T/err2"; then fail "a second board on one flash file ran"; fi
grep -q "one.bin: in use by another bluepill" "$T/err2" || fail "second board message: $(cat "$T/err2")"
kill -TERM "$first"
wait "$first" || fail "first board: $(cat "$T/err")"
[ "$(stat -c %s "$T/one.bin")" = 65536 ] || fail "the first board's flash file was not written"
# The same once the first board has run a while: its flash file, saved as it runs (renamed
# over), must stay locked (a quarter of a second or more after its start).
fresh
"$BP" --image "$FW/usart_rx.elf" --flash "$T/two.bin" </dev/null >"$T/out" 2>"$T/err" &
first=$!
for _ in $(seq 400); do [ -s "$T/out" ] && break; sleep 0.05; done
sleep 1
if "$BP" --flash "$T/two.bin" --run-us 1000 </dev/null 2>"$T/err2"; then
  kill -TERM "$first"; wait "$first" || true
  fail "a second board on one flash file ran once the first had saved it as it runs"
fi
kill -TERM "$first"
wait "$first" || fail "first board: $(cat "$T/err")"

# SIGUSR1 presses the reset button: the program (it prints R, then waits for input) starts again,
# on the same link. reset_run [BLUEPILL ARGS...]
reset_run() {
  fresh
  "$BP" --image "$FW/usart_rx.elf" "$@" </dev/null >"$T/out" 2>"$T/err" &
  bp=$!
  for _ in $(seq 400); do [ -s "$T/out" ] && break; sleep 0.05; done
  kill -USR1 "$bp"
  for _ in $(seq 400); do [ "$(cat "$T/out")" = RR ] && break; sleep 0.05; done
  kill -TERM "$bp"
  wait "$bp" || fail "reset run $*: $(cat "$T/err")"
  [ "$(cat "$T/out")" = RR ] || fail "no second start after SIGUSR1 $*: '$(cat "$T/out")'"
  grep -Eq "reset \(SIGUSR1\) at [0-9]+ us$" "$T/err" || fail "reset message $*: $(cat "$T/err")"
}
reset_run
# The same with --cut-after: the button resets the board, it does not end the run.
reset_run --cut-after 100000000000
# --pty-link: a fixed name for the pty, a link to the path printed, removed at exit; an old link
# is replaced, anything else is not.
ln -s /nonexistent "$T/tty"
fresh
"$BP" --image "$FW/usart_rx.elf" --pty --pty-link "$T/tty" </dev/null >"$T/out" 2>"$T/err" &
bp=$!
for _ in $(seq 400); do grep -q "USART1 on" "$T/out" && break; sleep 0.05; done
[ "$(readlink "$T/tty")" = "$(awk '/USART1 on/ {print $NF}' "$T/out")" ] || fail "pty link: $(ls -l "$T/tty") $(cat "$T/out" "$T/err")"
kill -TERM "$bp"
wait "$bp" || fail "pty link run: $(cat "$T/err")"
[ ! -e "$T/tty" ] && [ ! -L "$T/tty" ] || fail "the pty link was left behind"
echo keep >"$T/file"
if "$BP" --image "$FW/usart_rx.elf" --pty --pty-link "$T/file" --run-us 1000 </dev/null >"$T/out" 2>"$T/err"; then
  fail "a regular file was taken for the pty link"
fi
grep -q "exists and is not a symbolic link" "$T/err" && [ "$(cat "$T/file")" = keep ] || fail "pty link over a file: $(cat "$T/err")"

# --connect says that it dials before anything listens (it keeps trying for 10 s).
fresh
"$BP" --image "$FW/usart_rx.elf" --connect 127.0.0.1:9 </dev/null 2>"$T/err" &
bp=$!
for _ in $(seq 400); do grep -q "dialling" "$T/err" && break; sleep 0.05; done
kill -TERM "$bp"
wait "$bp" || true
grep -q "^bluepill: dialling 127.0.0.1:9$" "$T/err" || fail "no dialling message: $(cat "$T/err")"
if grep -q "power cut after" "$T/err"; then fail "a cut reported that did not come: $(cat "$T/err")"; fi

# SIGTERM ends a board that waits for gdb (it used to wait on in accept()), and saves its flash.
rm -f "$T/g.bin"
fresh
timeout -k 2 10 "$BP" --image "$FW/hello.elf" --flash "$T/g.bin" --gdb 0 </dev/null >"$T/out" 2>"$T/err" &
bp=$!
for _ in $(seq 400); do grep -q "waiting for gdb" "$T/out" && break; sleep 0.05; done
kill -TERM "$bp"
wait "$bp" || fail "SIGTERM while waiting for gdb: status $? $(cat "$T/err")"
[ "$(stat -c %s "$T/g.bin")" = 65536 ] || fail "no flash file after SIGTERM while waiting for gdb"

# An image that cannot be loaded changes no file: not with --erase, not when a later --image
# fails, not when the bad segment comes after a good one.
"$BP" --image "$FW/hello.elf" --flash "$T/keep.bin" --exit-on pill </dev/null >/dev/null 2>"$T/err" || fail "keep: $(cat "$T/err")"
cp "$T/keep.bin" "$T/keep.orig"
printf ':020000040800F2\n:04F00000DEADBEEFD4\n:020000042000DA\n:0400000001020304F2\n:00000001FF\n' >"$T/ram.hex"
for args in "--erase --image $T/missing.hex" "--image $FW/erase_loop.elf --image $T/missing.hex" "--image $T/ram.hex"; do
  # shellcheck disable=SC2086
  if "$BP" --flash "$T/keep.bin" $args --run-us 1000 </dev/null 2>"$T/err"; then fail "bad image accepted: $args"; fi
  cmp -s "$T/keep.bin" "$T/keep.orig" || fail "the flash file changed after: $args ($(cat "$T/err"))"
done
grep -q "0x20000000 (4 bytes) is not in the internal flash" "$T/err" || fail "RAM segment message: $(cat "$T/err")"
[ ! -e "$T/keep.bin.part" ] || fail "a .part file was left behind"

# A broken HEX or ELF file: the error names the file and what is wrong with it.
printf ':020000040800F2\n:04F00000DEADBEXFD4\n:00000001FF\n' >"$T/digit.hex"
printf ':00000004FC\n:00000001FF\n' >"$T/short.hex"
head -c 100 "$FW/hello.elf" >"$T/cut.elf"
for case in "digit.hex:HEX line 2: X is not a hex digit" "short.hex:HEX line 1: an address record holds 2 bytes, not 0" \
            "cut.elf:ELF: "; do
  file=${case%%:*}
  if "$BP" --image "$T/$file" --run-us 1000 </dev/null >/dev/null 2>"$T/err"; then fail "$file accepted"; fi
  grep -qF "bluepill: $T/$file: ${case#*:}" "$T/err" || fail "$file: $(cat "$T/err")"
done

# Values out of range are usage errors.
for bad in "--gdb 70000" "--latency-ms -300" "--cut-at-us -5"; do
  # shellcheck disable=SC2086
  if "$BP" --image "$FW/hello.elf" $bad --run-us 1000 </dev/null >/dev/null 2>&1; then fail "accepted: $bad"; fi
done
for bad in "--uid 0x100000001,2,3" "--uid 1,2,3junk" "--uid -1,2,3" "--uid 1,2,3,4" "--connect 127.0.0.1:70000" \
           "--connect 127.0.0.1:1x" "--connect 127.0.0.1:abc" "--connect nohost" "--worn-page 0x08010000" \
           "--worn-page 0x20000000" "--worn-page 0x0800F000x"; do
  # shellcheck disable=SC2086
  if "$BP" --image "$FW/hello.elf" $bad --run-us 1000 </dev/null >/dev/null 2>"$T/err"; then fail "accepted: $bad"; fi
  grep -q "^bluepill: --\(uid\|connect\|worn-page\) wants" "$T/err" || fail "$bad: $(cat "$T/err")"
done
"$BP" --image "$FW/hello.elf" --worn-page 0x0800F000 --worn-page 0x080027ff --run-us 1000 </dev/null >/dev/null 2>"$T/err" ||
  fail "--worn-page refused: $(cat "$T/err")"
for bad in "--pty --connect 127.0.0.1:9" "--stdio --pty" "--no-w25q --w25q $T/w.bin"; do
  # shellcheck disable=SC2086
  if "$BP" --image "$FW/hello.elf" $bad --run-us 1000 </dev/null >/dev/null 2>"$T/err"; then fail "accepted: $bad"; fi
  grep -q "excludes" "$T/err" || fail "$bad: $(cat "$T/err")"
done
if "$BP" --flash "$T/same.bin" --w25q "$T/../$(basename "$T")/same.bin" --run-us 1000 </dev/null 2>"$T/err"; then
  fail "one file for both memories accepted"
fi
grep -q "name the same file" "$T/err" || fail "same file: $(cat "$T/err")"
if "$BP" --bench 0.01 "$T/missing.elf" >/dev/null 2>"$T/err"; then fail "bench of a missing image ran"; fi
grep -q "^bluepill: cannot open" "$T/err" || fail "bench of a missing image: $(cat "$T/err")"
echo "cli ok"
