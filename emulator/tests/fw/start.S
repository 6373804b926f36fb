/* Vector table and reset for the test programs: copies .data, clears .bss, calls main(), then
   stops the board with "bkpt 0x00" (the value main returns is left in r0). Handlers default to
   weak stubs that stop with "bkpt 0xEE" so an unexpected exception is visible. */
  .syntax unified
  .thumb
  .section .vectors, "a"
  .word _estack
  .word reset_handler
  .word nmi_handler, hardfault_handler, default_handler, default_handler, default_handler
  .word 0, 0, 0, 0
  .word svc_handler, default_handler, 0, pendsv_handler, systick_handler
  .rept 60
  .word irq_handler
  .endr

  .text
  .thumb_func
  .global reset_handler
reset_handler:
  ldr r0, =_sidata
  ldr r1, =_sdata
  ldr r2, =_edata
1: cmp r1, r2
  bhs 2f
  ldr r3, [r0], #4
  str r3, [r1], #4
  b 1b
2: ldr r1, =_sbss
  ldr r2, =_ebss
  movs r3, #0
3: cmp r1, r2
  bhs 4f
  str r3, [r1], #4
  b 3b
4: bl main
  bkpt 0x00
  b .

  .weak nmi_handler, hardfault_handler, svc_handler, pendsv_handler, systick_handler, irq_handler
  .global default_handler
  @ Functions all (.thumb_func marks only the label after it): their addresses in the table
  @ carry the Thumb bit.
  .type nmi_handler, %function
  .type hardfault_handler, %function
  .type svc_handler, %function
  .type pendsv_handler, %function
  .type systick_handler, %function
  .type irq_handler, %function
  .type default_handler, %function
nmi_handler:
hardfault_handler:
svc_handler:
pendsv_handler:
systick_handler:
irq_handler:
default_handler:
  bkpt 0xEE
  b .
