// instructions near the decoder's patterns that are correct code and must run without
// an error: TBB/TBH with Rn != PC (byte/halfword table, Rn not word-aligned), LDREXB/STREXB at
// an odd address, LDREXH/STREXH at 2 mod 4, LDREX/STREX word, LDRD/STRD pre/post-index with
// writeback and U=0, LDRD literal, LDMDB/STMDB, PUSH.W/POP.W, 16-bit LDM with Rn in the list,
// SDIV/UDIV by non-zero with DIV_0_TRP, and IT-skipped LDM/LDRD/SDIV that would fault if run.
// RESULT(0) = 0xC0DE when all steps ran; RESULT(1) = number of checks that failed.
#include "fw.hpp"

extern "C" uint32_t exercise(uint32_t sram);
__asm(R"(
  .syntax unified
  .thumb
  .text
  .balign 4
  .global exercise
  .thumb_func
exercise:
  push.w {r4-r11, lr}       @ STMDB SP! (PUSH T2)
  mov r12, r0               @ r12 = SRAM scratch base (word aligned)
  movs r9, #0               @ failure count
  @ --- TBB [Rn, Rm] with Rn odd (byte table at an odd address)
  adr r2, tbb_tab
  adds r2, #1
  movs r1, #1
  tbb [r2, r1]
tbb_base:
  adds r9, #1               @ offset 0 lands here: wrong
tbb_ok:
  @ --- TBH [Rn, Rm, LSL #1] with Rn = 2 mod 4
  adr r2, tbh_tab
  adds r2, #2
  movs r1, #0
  tbh [r2, r1, lsl #1]
tbh_base:
  adds r9, #1
tbh_ok:
  @ --- TBB [PC, Rm]
  movs r1, #0
  tbb [pc, r1]
tbbpc_tab:
  .byte (tbbpc_ok - tbbpc_tab) / 2, 0
tbbpc_bad:
  adds r9, #1
tbbpc_ok:
  @ --- LDREXB/STREXB at an odd address
  add r0, r12, #1
  movs r1, #0x5A
  strb r1, [r0]
  ldrexb r2, [r0]
  strexb r3, r1, [r0]
  cmp r2, #0x5A
  it ne
  addne r9, #1
  @ --- LDREXH/STREXH at 2 mod 4
  add r0, r12, #2
  ldrexh r2, [r0]
  strexh r3, r1, [r0]
  @ --- LDREX/STREX word (aligned, with offset)
  ldrex r2, [r12, #8]
  strex r3, r2, [r12, #8]
  @ --- LDRD/STRD, pre-index with writeback, post-index, U=0
  mov r0, r12
  movs r2, #1
  movs r3, #2
  strd r2, r3, [r0, #16]!   @ r0 = base+16
  ldrd r4, r5, [r0], #-8    @ from base+16; r0 = base+8
  strd r4, r5, [r0, #-8]    @ to base+0
  ldrd r6, r7, [r0, #-8]!   @ r0 = base+0
  cmp r7, #2
  it ne
  addne r9, #1
  strd r2, r3, [r0], #8     @ post-index STRD
  @ --- LDRD literal
  ldrd r4, r5, lit
  cmp r5, #0x77
  it ne
  addne r9, #1
  @ --- STMDB/LDMDB (Rn != SP), with and without writeback
  add r0, r12, #32
  stmdb r0!, {r2-r5}
  ldmdb r0, {r4-r7}         @ no writeback: reads base+16-16 .. hmm, below r0
  add r0, r12, #32
  ldmdb r0!, {r4-r7, r8}
  @ --- 32-bit LDMIA/STMIA
  stmia.w r12, {r2, r3}
  ldmia.w r12, {r4, r5}
  @ --- 16-bit LDM with Rn in the list (no writeback) and 16-bit STM with writeback
  mov r0, r12
  stmia r0!, {r2, r3}
  mov r0, r12
  ldmia r0, {r0, r1}
  cmp r0, #1
  it ne
  addne r9, #1
  @ --- PUSH.W/POP.W single register (T3 / T4 are STR/LDR), and multi
  push.w {r4}
  pop.w {r4}
  push.w {r2, r3}
  pop.w {r2, r3}
  @ --- DIV_0_TRP set, dividing by non-zero
  ldr r0, =0xE000ED14
  ldr r1, [r0]
  orr r1, r1, #0x10
  str r1, [r0]
  dsb
  isb
  movs r1, #3
  movs r2, #10
  sdiv r3, r2, r1
  udiv r3, r2, r1
  @ --- IT-skipped instructions that would fault if they ran
  add r0, r12, #2           @ unaligned
  movs r1, #0
  cmp r1, #0                @ Z set
  itt ne
  ldmne r0, {r2, r3}        @ skipped
  sdivne r4, r4, r1         @ skipped: divide by zero under DIV_0_TRP
  it ne
  ldrdne r2, r3, [r0]       @ skipped
  @ --- a 16-bit branch over data that looks like LDM/SDIV first halfwords
  b 1f
  .hword 0xE890, 0x000C, 0xFB94, 0xF4F1
1:
  ldr r0, =0xE000ED14
  ldr r1, [r0]
  bic r1, r1, #0x10
  str r1, [r0]
  mov r0, r9
  pop.w {r4-r11, pc}        @ LDMIA SP! (POP T2)
  .balign 4
lit:
  .word 0x66, 0x77
tbb_tab:
  .byte 0                   @ pad: the table is read from tbb_tab+1
  .byte 0, (tbb_ok - tbb_base) / 2
  .balign 4
tbh_tab:
  .hword 0
  .hword (tbh_ok - tbh_base) / 2
  .ltorg
)");

int main() {
  RESULT(0) = 0;
  RESULT(1) = 0xFFFFFFFF;
  const uint32_t fails = exercise(0x20002000);
  RESULT(1) = fails;
  RESULT(0) = 0xC0DE;
  return 0;
}
