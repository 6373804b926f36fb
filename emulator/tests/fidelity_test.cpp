// Fidelity: behaviours of the STM32F103C8 that the emulator once modelled more leniently than
// the silicon. Each test drives the registers through the bus (Chip::bus_read/bus_write, as the
// CPU's loads and stores would) on a powered board whose program has not run, and asserts what
// RM0008 says the part does.
#include "bluepill/chip.hpp"
#include "helpers.hpp"

using namespace bptest;

namespace {

constexpr std::uint32_t kRccCfgr = 0x40021004, kRccApb2enr = 0x40021018;
constexpr std::uint32_t kFlashAcr = 0x40022000;
constexpr std::uint32_t kGpioaCrl = 0x40010800, kGpioaBsrr = 0x40010810;
constexpr std::uint32_t kSpi1Cr1 = 0x40013000, kSpi1Sr = 0x40013008, kSpi1Dr = 0x4001300C;
constexpr std::uint32_t kSpiRxne = 1u << 0, kSpiOvr = 1u << 6;

std::uint32_t rd(bluepill::Chip& c, std::uint32_t addr) {
  std::uint32_t v = 0;
  EXPECT_TRUE(c.bus_read(addr, 4, v));
  return v;
}
void wr(bluepill::Chip& c, std::uint32_t addr, std::uint32_t v) { EXPECT_TRUE(c.bus_write(addr, 4, v)); }
void advance_us(bluepill::Chip& c, double us) { c.sched().now += static_cast<bluepill::Cycles>(us * 72.0); }

// SPI1 as the firmware sets it up (master, SSM + SSI, slowest clock, PA4-7 wired), nothing on
// the bus: at HSI 8 MHz and BR = 7 a frame lasts 8 x 256 / 8 MHz = 256 us.
void spi1_master(bluepill::Chip& c) {
  wr(c, kRccApb2enr, (1u << 12) | (1u << 2));  // SPI1EN, IOPAEN
  wr(c, kGpioaBsrr, 1u << 4);                  // PA4 (CS) high
  wr(c, kGpioaCrl, 0xB8B34444);                // PA7 AF PP, PA6 input pull, PA5 AF PP, PA4 output
  wr(c, kSpi1Cr1, (1u << 9) | (1u << 8) | (7u << 3) | (1u << 2));  // SSM SSI BR=7 MSTR
  wr(c, kSpi1Cr1, (1u << 9) | (1u << 8) | (7u << 3) | (1u << 2) | (1u << 6));  // + SPE
}

}  // namespace

// RM0008 25.3.10, "Overrun condition": "When an overrun occurs: the OVR bit is set [...]. In this
// case, the receiver buffer contents will not be updated with the newly received data from the
// transmitter device. A read from the SPI_DR register returns this byte. All other subsequently
// transmitted bytes are lost. Clearing the OVR bit is done by a read from the SPI_DR register
// followed by a read access to the SPI_SR register."
TEST(Fidelity, SpiOverrunIsClearedByDrThenSrAndFramesUntilThenAreLost) {
  bluepill::Config cfg;
  cfg.w25q = false;  // MISO reads 0xFF: only the flags matter
  auto b = board_with("hello", cfg);
  bluepill::Chip& c = *b->chip();
  spi1_master(c);
  wr(c, kSpi1Dr, 0x11);
  advance_us(c, 300);
  wr(c, kSpi1Dr, 0x22);  // RXNE still set: this frame overruns
  advance_us(c, 300);
  EXPECT_EQ(rd(c, kSpi1Sr) & (kSpiOvr | kSpiRxne), kSpiOvr | kSpiRxne);
  static_cast<void>(rd(c, kSpi1Dr));  // step 1 of the clearing sequence; RXNE cleared
  // A frame exchanged between the two steps is lost: OVR is still set.
  wr(c, kSpi1Dr, 0x33);
  advance_us(c, 300);
  const std::uint32_t sr = rd(c, kSpi1Sr);  // step 2: this read still shows OVR, then clears it
  EXPECT_EQ(sr & kSpiOvr, kSpiOvr) << "a DR read alone does not clear OVR";
  EXPECT_EQ(sr & kSpiRxne, 0u) << "the frame received while OVR was set is lost";
  EXPECT_EQ(rd(c, kSpi1Sr) & kSpiOvr, 0u) << "DR read then SR read clears OVR";
  // Back to normal: the next frame is received.
  wr(c, kSpi1Dr, 0x44);
  advance_us(c, 300);
  EXPECT_EQ(rd(c, kSpi1Sr) & (kSpiOvr | kSpiRxne), kSpiRxne);
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

// RM0008 3.3.3 ("Half cycle"): "This feature can therefore be used only with a low-frequency
// clock of 8 MHz or less. It can be generated from the HSI or the HSE but not from the PLL."
// FLASH_ACR.HLFCYA set with SYSCLK above 8 MHz (or SYSCLK raised above 8 MHz with it set) makes
// the flash read wrong data, as too few wait states would: an error, like LATENCY.
TEST(Fidelity, FlashHalfCycleAccessAboveEightMegahertzIsAnError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto slow = board_with("hello", cfg);  // HSI, 8 MHz
  wr(*slow->chip(), kFlashAcr, 0x18);    // HLFCYA + PRFTBE at 8 MHz: allowed
  EXPECT_EQ(slow->diagnostics().errors(), 0u) << slow->diagnostics().error_text();

  auto fast = board_with("hello", cfg);
  run_to_end(*fast);  // 72 MHz from the PLL, LATENCY 2, prefetch on
  ASSERT_EQ(fast->diagnostics().errors(), 0u) << fast->diagnostics().error_text();
  wr(*fast->chip(), kFlashAcr, 0x1A);  // + HLFCYA
  EXPECT_EQ(fast->diagnostics().errors(), 1u) << "HLFCYA at 72 MHz: " << fast->diagnostics().error_text();
  EXPECT_NE(fast->diagnostics().error_text().find("HLFCYA"), std::string::npos) << fast->diagnostics().error_text();
}

// RM0008 3.3.3 ("Prefetch buffer"): "The prefetch buffer must be kept on when using a prescaler
// different from 1 on the AHB clock." With it off (allowed below 24 MHz), an AHB prescaler is
// an error.
TEST(Fidelity, AnAhbPrescalerWithThePrefetchBufferOffIsAnError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("hello", cfg);  // HSI, 8 MHz, no prescaler
  bluepill::Chip& c = *b->chip();
  wr(c, kFlashAcr, 0x00);  // prefetch off: allowed at 8 MHz with HCLK = SYSCLK
  ASSERT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
  wr(c, kRccCfgr, 0x8u << 4);  // HPRE = /2
  EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();
  EXPECT_NE(b->diagnostics().error_text().find("prefetch"), std::string::npos) << b->diagnostics().error_text();
}

// DS5319 ("PLL characteristics"): the PLL's output runs from 16 to 72 MHz. PLLON with a set-up
// outside that range (here HSE x 16 = 128 MHz, or HSI/2 x 2 = 8 MHz) is out of specification
// even while the PLL does not clock the system: an error.
TEST(Fidelity, APllOutsideItsOutputRangeIsAnError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto fast = board_with("hello", cfg);
  bluepill::Chip& c = *fast->chip();
  wr(c, 0x40021000, rd(c, 0x40021000) | (1u << 16));  // HSEON
  wr(c, kRccCfgr, (1u << 16) | (14u << 18));           // PLLSRC = HSE, PLLMUL x16: 128 MHz
  wr(c, 0x40021000, rd(c, 0x40021000) | (1u << 24));  // PLLON
  EXPECT_EQ(fast->diagnostics().errors(), 1u) << fast->diagnostics().error_text();
  EXPECT_NE(fast->diagnostics().error_text().find("PLL"), std::string::npos) << fast->diagnostics().error_text();

  auto slow = board_with("hello", cfg);
  bluepill::Chip& s = *slow->chip();
  wr(s, kRccCfgr, 0u << 18);                          // PLLSRC = HSI/2, PLLMUL x2: 8 MHz
  wr(s, 0x40021000, rd(s, 0x40021000) | (1u << 24));  // PLLON
  EXPECT_EQ(slow->diagnostics().errors(), 1u) << slow->diagnostics().error_text();

  auto ok = board_with("hello", cfg);  // the firmware's HSI fallback: HSI/2 x 16 = 64 MHz
  bluepill::Chip& o = *ok->chip();
  wr(o, kRccCfgr, 14u << 18);
  wr(o, 0x40021000, rd(o, 0x40021000) | (1u << 24));
  EXPECT_EQ(ok->diagnostics().errors(), 0u) << ok->diagnostics().error_text();
}

// PM0056 4.4.5 (AIRCR): "Bit 0 VECTRESET: Reserved for Debug use. [...] When writing to the
// register you must write 0 to this bit, otherwise behavior is unpredictable." It is no system
// reset (it resets the core, not the peripherals): software that relies on it is an error.
TEST(Fidelity, AircrVectresetFromSoftwareIsAnError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("hello", cfg);
  wr(*b->chip(), 0xE000ED0C, 0x05FA0001);
  EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();
  EXPECT_NE(b->diagnostics().error_text().find("VECTRESET"), std::string::npos) << b->diagnostics().error_text();
  auto ok = board_with("hello", cfg);
  wr(*ok->chip(), 0xE000ED0C, 0x05FA0004);  // SYSRESETREQ, as the firmware writes it
  EXPECT_EQ(ok->diagnostics().errors(), 0u) << ok->diagnostics().error_text();
}

// DS5319 ("Low-speed internal (LSI) RC oscillator characteristics"): tsu(LSI), the LSI's start-up
// time, is 85 us at most. RCC_CSR.LSIRDY rises only then, not at the LSION write.
TEST(Fidelity, LsiReadyTakesItsStartUpTime) {
  auto b = board_with("hello");
  bluepill::Chip& c = *b->chip();
  constexpr std::uint32_t kCsr = 0x40021024;
  EXPECT_EQ(rd(c, kCsr) & 3u, 0u);
  wr(c, kCsr, 1u);  // LSION
  EXPECT_EQ(rd(c, kCsr) & 3u, 1u) << "LSIRDY right after LSION";
  advance_us(c, 90);
  EXPECT_EQ(rd(c, kCsr) & 3u, 3u) << "LSIRDY after tsu(LSI)";
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

// RM0008 9.2.7 (GPIOx_LCKR): after the lock key sequence (LCKK written 1, 0, 1 with the same
// LCK bits, then read), "GPIOx_LCKR register is locked until the next reset" and the locked
// pins' configuration cannot be modified: CRL/CRH writes leave those fields as they were.
TEST(Fidelity, GpioLockFreezesTheLockedPinsConfiguration) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("hello", cfg);
  bluepill::Chip& c = *b->chip();
  constexpr std::uint32_t kGpioaLckr = 0x40010818;
  wr(c, kRccApb2enr, 1u << 2);  // IOPAEN
  wr(c, kGpioaCrl, 0x44444443);  // PA0 output
  wr(c, kGpioaLckr, 0x10001);
  wr(c, kGpioaLckr, 0x00001);
  wr(c, kGpioaLckr, 0x10001);
  EXPECT_EQ(rd(c, kGpioaLckr) & 0x10000u, 0u) << "Read 0";
  EXPECT_EQ(rd(c, kGpioaLckr), 0x10001u) << "Read 1: LCKK set, PA0 locked";
  wr(c, kGpioaCrl, 0x44444B34);  // PA0 back to input, PA1 output, PA2 AF
  EXPECT_EQ(rd(c, kGpioaCrl), 0x44444B33u) << "PA0 keeps its locked configuration, PA1 and PA2 change";
  EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();

  auto broken = board_with("hello", cfg);  // a wrong sequence (LCK changed midway) locks nothing
  bluepill::Chip& d = *broken->chip();
  wr(d, kRccApb2enr, 1u << 2);
  wr(d, kGpioaLckr, 0x10001);
  wr(d, kGpioaLckr, 0x00003);
  wr(d, kGpioaLckr, 0x10001);
  static_cast<void>(rd(d, kGpioaLckr));
  EXPECT_EQ(rd(d, kGpioaLckr) & 0x10000u, 0u);
  wr(d, kGpioaCrl, 0x44444443);
  EXPECT_EQ(rd(d, kGpioaCrl), 0x44444443u);
  EXPECT_EQ(broken->diagnostics().errors(), 0u) << broken->diagnostics().error_text();
}
