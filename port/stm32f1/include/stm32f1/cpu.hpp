// Core services: the 96-bit unique ID, system reset, the jump to another image.
#pragma once

#include <cstdint>

namespace stm32f1::cpu {

// The 12 bytes of the unique ID at 0x1FFFF7E8 (RM0008 §30.2), in address order; and the same as
// 24 lowercase hex digits.
void uid(std::uint8_t out[12]);
void uid_hex(char out[24]);

// Sleeps until the next interrupt (WFI, PM0056 §2.5.2): SysTick, or a peripheral's. The DMA
// keeps receiving meanwhile; the idle loop spends no power and the emulated board skips the time.
inline void wait_for_interrupt() { asm volatile("wfi" ::: "memory"); }

// SYSRESETREQ through AIRCR (PM0056 §4.4.5).
[[noreturn]] void reset();

// Stops SysTick, disables and unpends every interrupt, puts the GPIO ports, AFIO, SPI1, USART1
// and the peripheral clocks back to their reset state, points VTOR at the image, loads its MSP
// and calls its reset handler. The caller first stops its DMA (usart1::deinit), returns to the
// reset clock (clock::reset) and has checked the image (ota::Installer::app_valid).
[[noreturn]] void jump_to_image(std::uint32_t base);

}  // namespace stm32f1::cpu
