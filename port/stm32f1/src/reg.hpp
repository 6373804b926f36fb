// Register maps of the STM32F103 (RM0008 rev 21) and of the Cortex-M3 core (PM0056), named as in
// the manuals. Each map is a volatile struct at its base address with its offsets asserted.
// Private to the port: nothing outside port/stm32f1/src includes it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stm32f1::reg {

using R = volatile std::uint32_t;

template <typename T, std::uintptr_t Base>
inline T& at() {
  return *reinterpret_cast<T*>(Base);
}

// ---- RCC, RM0008 §7.3 (0x40021000) ---------------------------------------------------------
struct Rcc {
  R CR, CFGR, CIR, APB2RSTR, APB1RSTR, AHBENR, APB2ENR, APB1ENR, BDCR, CSR;
};
static_assert(offsetof(Rcc, CFGR) == 0x04 && offsetof(Rcc, APB2RSTR) == 0x0C);
static_assert(offsetof(Rcc, AHBENR) == 0x14 && offsetof(Rcc, APB2ENR) == 0x18);
static_assert(offsetof(Rcc, CSR) == 0x24);
inline Rcc& RCC() { return at<Rcc, 0x40021000>(); }
namespace rcc_cr {  // §7.3.1
constexpr std::uint32_t HSION = 1u << 0, HSIRDY = 1u << 1, HSEON = 1u << 16, HSERDY = 1u << 17,
                        HSEBYP = 1u << 18, CSSON = 1u << 19, PLLON = 1u << 24, PLLRDY = 1u << 25;
}
namespace rcc_cir {  // §7.3.3
constexpr std::uint32_t CSSF = 1u << 7;  // the clock security system saw the HSE fail
}
namespace rcc_cfgr {  // §7.3.2
constexpr std::uint32_t SW_MASK = 3u << 0, SW_HSI = 0u, SW_PLL = 2u;
constexpr std::uint32_t SWS_MASK = 3u << 2, SWS_HSI = 0u << 2, SWS_PLL = 2u << 2;
constexpr std::uint32_t PPRE1_DIV2 = 4u << 8;   // APB1 <= 36 MHz
constexpr std::uint32_t ADCPRE_DIV6 = 2u << 14;  // ADC clock <= 14 MHz
constexpr std::uint32_t PLLSRC_HSE = 1u << 16;
constexpr std::uint32_t PLLMUL_X9 = 7u << 18;   // 0111: PLL input x 9
constexpr std::uint32_t PLLMUL_X16 = 14u << 18;  // 1110: PLL input x 16 (PLLSRC 0: HSI / 2)
}
namespace rcc_ahbenr {  // §7.3.6
constexpr std::uint32_t DMA1EN = 1u << 0, SRAMEN = 1u << 2, FLITFEN = 1u << 4, CRCEN = 1u << 6;
}
namespace rcc_apb1 {  // §7.3.5 APB1RSTR / §7.3.8 APB1ENR share the bit positions
constexpr std::uint32_t PWR = 1u << 28;
}
namespace rcc_apb2 {  // §7.3.4 APB2RSTR / §7.3.7 APB2ENR share the bit positions
constexpr std::uint32_t AFIO = 1u << 0, IOPA = 1u << 2, IOPB = 1u << 3, IOPC = 1u << 4,
                        SPI1 = 1u << 12, USART1 = 1u << 14;
}

// ---- GPIO, RM0008 §9.2 (GPIOA 0x40010800, GPIOB 0x40010C00, GPIOC 0x40011000) -----------------
struct Gpio {
  R CRL, CRH, IDR, ODR, BSRR, BRR, LCKR;
};
static_assert(offsetof(Gpio, IDR) == 0x08 && offsetof(Gpio, BSRR) == 0x10);
static_assert(offsetof(Gpio, LCKR) == 0x18);

// ---- DMA1, RM0008 §13.4 (0x40020000); channel n (1..7) at 0x08 + 20 * (n - 1) --------------
struct DmaChannel {
  R CCR, CNDTR, CPAR, CMAR, reserved;
};
struct Dma {
  R ISR, IFCR;
  DmaChannel CH[7];
};
static_assert(sizeof(DmaChannel) == 20);
static_assert(offsetof(Dma, CH) == 0x08);
static_assert(offsetof(Dma, CH) + 4 * sizeof(DmaChannel) == 0x58);  // DMA_CCR5
inline Dma& DMA1() { return at<Dma, 0x40020000>(); }
namespace dma_ccr {  // §13.4.3
constexpr std::uint32_t EN = 1u << 0, DIR = 1u << 4, CIRC = 1u << 5, MINC = 1u << 7,
                        PL_HIGH = 2u << 12;
}

// ---- USART, RM0008 §27.6 (USART1 0x40013800, on APB2) ---------------------------------------
struct Usart {
  R SR, DR, BRR, CR1, CR2, CR3, GTPR;
};
static_assert(offsetof(Usart, BRR) == 0x08 && offsetof(Usart, CR1) == 0x0C);
static_assert(offsetof(Usart, CR3) == 0x14 && offsetof(Usart, GTPR) == 0x18);
inline Usart& USART1() { return at<Usart, 0x40013800>(); }
namespace usart_sr {  // §27.6.1
constexpr std::uint32_t ORE = 1u << 3, RXNE = 1u << 5, TC = 1u << 6, TXE = 1u << 7;
}
namespace usart_cr1 {  // §27.6.4; M = 0: 8 data bits, PCE = 0: no parity
constexpr std::uint32_t RE = 1u << 2, TE = 1u << 3, UE = 1u << 13;
}
namespace usart_cr3 {  // §27.6.6
constexpr std::uint32_t DMAR = 1u << 6;
}

// ---- SPI, RM0008 §25.5 (SPI1 0x40013000, on APB2) -------------------------------------------
struct Spi {
  R CR1, CR2, SR, DR, CRCPR, RXCRCR, TXCRCR, I2SCFGR, I2SPR;
};
static_assert(offsetof(Spi, SR) == 0x08 && offsetof(Spi, DR) == 0x0C);
static_assert(offsetof(Spi, I2SPR) == 0x20);
inline Spi& SPI1() { return at<Spi, 0x40013000>(); }
namespace spi_cr1 {  // §25.5.1; CPOL = CPHA = 0 (mode 0), DFF = 0 (8 bit), MSB first
constexpr std::uint32_t MSTR = 1u << 2, BR_SHIFT = 3, SPE = 1u << 6, SSI = 1u << 8,
                        SSM = 1u << 9;
}
namespace spi_sr {  // §25.5.3
constexpr std::uint32_t RXNE = 1u << 0, TXE = 1u << 1, BSY = 1u << 7;
}

// ---- FLASH interface (FPEC), RM0008 §3.3.3; registers in PM0075, the flash programming manual
struct Flash {
  R ACR, KEYR, OPTKEYR, SR, CR, AR, reserved, OBR, WRPR;
};
static_assert(offsetof(Flash, KEYR) == 0x04 && offsetof(Flash, SR) == 0x0C);
static_assert(offsetof(Flash, CR) == 0x10 && offsetof(Flash, AR) == 0x14);
static_assert(offsetof(Flash, WRPR) == 0x20);
inline Flash& FLASH() { return at<Flash, 0x40022000>(); }
namespace flash_acr {  // FLASH_ACR: 2 wait states for 48 < SYSCLK <= 72 MHz (RM0008 §3.3.3)
constexpr std::uint32_t LATENCY_MASK = 7u, LATENCY_2 = 2u, PRFTBE = 1u << 4;
}
namespace flash_keyr {  // KEY1 then KEY2 unlock FLASH_CR; a wrong key locks it until reset
constexpr std::uint32_t KEY1 = 0x45670123u, KEY2 = 0xCDEF89ABu;
}
namespace flash_obr {  // FLASH_OBR, the option bytes as loaded at reset (PM0075 §2.5)
constexpr std::uint32_t WDG_SW = 1u << 2;  // 0: the IWDG starts by itself at every reset
}
namespace flash_sr {  // FLASH_SR; PGERR, WRPRTERR and EOP are cleared by writing 1
constexpr std::uint32_t BSY = 1u << 0, PGERR = 1u << 2, WRPRTERR = 1u << 4, EOP = 1u << 5;
}
namespace flash_cr {  // FLASH_CR
constexpr std::uint32_t PG = 1u << 0, PER = 1u << 1, STRT = 1u << 6, LOCK = 1u << 7;
}

// ---- CRC calculation unit, RM0008 §4.4 (0x40023000) -----------------------------------------
struct Crc {
  R DR, IDR, CR;
};
static_assert(offsetof(Crc, CR) == 0x08);
inline Crc& CRC() { return at<Crc, 0x40023000>(); }
namespace crc_cr {
constexpr std::uint32_t RESET = 1u << 0;  // reloads DR with 0xFFFFFFFF
}

// ---- PWR, RM0008 §5.4 (0x40007000) ---------------------------------------------------------
struct Pwr {
  R CR, CSR;
};
inline Pwr& PWR() { return at<Pwr, 0x40007000>(); }
namespace pwr_cr {  // §5.4.1: the voltage detector on, at its highest level
constexpr std::uint32_t PVDE = 1u << 4, PLS_2V9 = 7u << 5;
}
namespace pwr_csr {  // §5.4.2: VDD is below the PVD threshold
constexpr std::uint32_t PVDO = 1u << 2;
}

// ---- IWDG, RM0008 §19.4 (0x40003000), clocked by the ~40 kHz LSI ----------------------------
struct Iwdg {
  R KR, PR, RLR, SR;
};
static_assert(offsetof(Iwdg, RLR) == 0x08 && offsetof(Iwdg, SR) == 0x0C);
inline Iwdg& IWDG() { return at<Iwdg, 0x40003000>(); }
namespace iwdg_kr {  // §19.4.1
constexpr std::uint32_t RELOAD = 0xAAAA, UNLOCK = 0x5555, START = 0xCCCC;
}
namespace iwdg_sr {  // §19.4.4: a PR / RLR update is in progress
constexpr std::uint32_t PVU = 1u << 0, RVU = 1u << 1;
}

// ---- Cortex-M3 core: SysTick PM0056 §4.5 (0xE000E010), SCB §4.4 (0xE000ED00), NVIC §4.3 ----
struct SysTick {
  R CTRL, LOAD, VAL, CALIB;
};
static_assert(offsetof(SysTick, VAL) == 0x08);
inline SysTick& SYSTICK() { return at<SysTick, 0xE000E010>(); }
namespace systick_ctrl {
constexpr std::uint32_t ENABLE = 1u << 0, TICKINT = 1u << 1, CLKSOURCE = 1u << 2;  // 1: HCLK
}
struct Scb {
  R CPUID, ICSR, VTOR, AIRCR, SCR, CCR;
};
static_assert(offsetof(Scb, VTOR) == 0x08 && offsetof(Scb, AIRCR) == 0x0C);
inline Scb& SCB() { return at<Scb, 0xE000ED00>(); }
namespace scb_icsr {
constexpr std::uint32_t PENDSTCLR = 1u << 25;
}
namespace scb_aircr {
constexpr std::uint32_t VECTKEY = 0x05FAu << 16, PRIGROUP_MASK = 7u << 8, SYSRESETREQ = 1u << 2;
}
struct Nvic {
  R ISER[8];
  std::uint32_t reserved0[24];
  R ICER[8];
  std::uint32_t reserved1[24];
  R ISPR[8];
  std::uint32_t reserved2[24];
  R ICPR[8];
};
static_assert(offsetof(Nvic, ICER) == 0x80 && offsetof(Nvic, ICPR) == 0x180);
inline Nvic& NVIC() { return at<Nvic, 0xE000E100>(); }

// ---- Device electronic signature, RM0008 §30.2 ----------------------------------------------
constexpr std::uintptr_t UID_BASE = 0x1FFFF7E8;  // 96-bit unique ID, 12 bytes

}  // namespace stm32f1::reg
