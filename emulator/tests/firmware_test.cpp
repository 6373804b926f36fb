// The project's own bootloader and application (both layouts) boot on the board and print their
// banners. The images come from the firmware build (OTA_FIRMWARE_DIR); `make test` builds them
// first, so a missing image is a failure, never a skip.
#include <cstdio>
#include <filesystem>

#include "bluepill/image.hpp"
#include "ota/crc.hpp"
#include "helpers.hpp"

namespace {

std::string image(const std::string& layout, const std::string& file) {
  return std::string(OTA_FIRMWARE_DIR) + "/" + layout + "/" + file;
}

std::string uid_hex(const std::array<std::uint32_t, 3>& uid) {  // the UID bytes, lowest address first
  std::string s;
  char b[4];
  for (std::uint32_t w : uid)
    for (int i = 0; i < 4; ++i) {
      std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>((w >> (8 * i)) & 0xFF));
      s += b;
    }
  return s;
}

class Firmware : public ::testing::TestWithParam<std::string> {
 protected:
  void boot_and_check(bluepill::Board& b) {
    b.power_on();
    const auto r = b.run_until_output("app v", 3e6);
    ASSERT_EQ(r.stop, bluepill::Stop::condition)
        << bluepill::to_string(r.stop) << " " << r.message << "\nUART: " << b.uart_output();
    // Let the banner line finish.
    ASSERT_EQ(b.run_until([&] { return b.uart_output().find('\n', b.uart_output().find("app v")) != std::string::npos; }, 1e5).stop,
              bluepill::Stop::condition);
    const std::string out = b.uart_output();
    const auto boot_at = out.find("boot " + GetParam());
    EXPECT_NE(boot_at, std::string::npos) << out;
    EXPECT_LT(boot_at, out.find("app v")) << "the bootloader speaks first";
    EXPECT_NE(out.find("uid " + uid_hex(b.config().uid)), std::string::npos) << "the banner carries the UID: " << out;
    EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
  }
};

TEST_P(Firmware, BootloaderAndAppElfBoot) {
  const std::string boot = image(GetParam(), "bootloader.elf"), app = image(GetParam(), "app.elf");
  ASSERT_TRUE(std::filesystem::exists(boot)) << boot << " missing: build the firmware (make firmware)";
  ASSERT_TRUE(std::filesystem::exists(app)) << app << " missing: build the firmware (make firmware)";
  bluepill::Config cfg;
  cfg.uid = {0x12345678, 0x9ABCDEF0, 0x0F1E2D3C};
  bluepill::Board b(cfg);
  b.load_image(boot);
  b.load_image(app);
  boot_and_check(b);
}

TEST_P(Firmware, FactoryHexBoots) {
  const std::string hex = image(GetParam(), "factory.hex");
  ASSERT_TRUE(std::filesystem::exists(hex)) << hex << " missing: build the firmware (make firmware)";
  bluepill::Board b;
  b.load_image(hex);
  boot_and_check(b);
}

TEST_P(Firmware, BinImagesAtTheirAddressesBoot) {
  const std::string boot = image(GetParam(), "bootloader.bin"), app = image(GetParam(), "app.bin");
  ASSERT_TRUE(std::filesystem::exists(boot) && std::filesystem::exists(app)) << "missing .bin images";
  bluepill::Board b;
  b.load_image(boot, 0x08000000);
  b.load_image(app, 0x08002000);
  boot_and_check(b);
}

// The application's LED (PC13, lit when low) starts off: the pin becomes an output already
// driving high, not low for the instructions until its level is written (a flash at every boot),
// and then it blinks.
TEST_P(Firmware, TheLedIsNeverLitWhenItsPinBecomesAnOutput) {
  bluepill::Board b;
  b.load_image(image(GetParam(), "factory.hex"));
  b.power_on();
  ASSERT_EQ(b.run_until_output("app v", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
  ASSERT_EQ(b.run_for_us(1.2e6).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
  EXPECT_EQ(b.led_lit_as_configured(), 0u);
  EXPECT_GE(b.led_changes(), 2u) << "the LED blinks";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The bootloader hands the application a chip as after a reset: stopped at the application's
// first instruction, the clock (and the flash wait states that went with it), the peripheral
// clocks, the pins and the voltage detector it used are back to their reset values (RM0008
// §3.3.3, §5.4.1, §7.3, §9.2), VTOR and MSP are the application's, SysTick is off.
TEST_P(Firmware, TheApplicationStartsOnAChipInItsResetState) {
  bluepill::Board b;
  b.load_image(image(GetParam(), "factory.hex"));
  std::uint32_t vt[2] = {};
  ASSERT_TRUE(b.read_memory(0x08002000, vt, sizeof vt));
  b.set_breakpoints({vt[1] & ~1u});
  b.power_on();
  const auto r = b.run_for_us(3e6);
  ASSERT_EQ(r.stop, bluepill::Stop::debug) << bluepill::to_string(r.stop) << " " << r.message << "\n" << b.uart_output();
  ASSERT_EQ(b.reg(15), vt[1] & ~1u);
  EXPECT_EQ(b.reg(13), vt[0]) << "MSP";
  auto word = [&](std::uint32_t addr) {
    std::uint32_t v = 0xDEADBEEF;
    EXPECT_TRUE(b.debug_read(addr, &v, 4)) << std::hex << addr;
    return v;
  };
  EXPECT_EQ(word(0xE000ED08), 0x08002000u) << "VTOR";
  EXPECT_EQ(word(0xE000E010) & 1u, 0u) << "SysTick stopped";
  EXPECT_EQ(word(0x40021000) & ((1u << 16) | (1u << 19) | (1u << 24)), 0u) << "RCC_CR: HSE, its clock security and PLL off";
  EXPECT_EQ(word(0x40021004), 0u) << "RCC_CFGR: SYSCLK = HSI, prescalers /1";
  EXPECT_EQ(word(0x40021014), 0x14u) << "RCC_AHBENR: SRAM and FLITF only, DMA1 off";
  EXPECT_EQ(word(0x40021018), 0u) << "RCC_APB2ENR";
  EXPECT_EQ(word(0x40022000) & 7u, 0u) << "FLASH_ACR: LATENCY back to zero wait states, as on the 8 MHz reset clock";
  // Reading DMA1 and GPIOA needs their clocks: enable, read, and leave them as found.
  auto set = [&](std::uint32_t addr, std::uint32_t v) { ASSERT_TRUE(b.debug_write(addr, &v, 4)); };
  set(0x40021014, 0x15);    // + DMA1EN
  set(0x40021018, 1u << 2);  // IOPAEN
  EXPECT_EQ(word(0x40020058), 0u) << "DMA1 channel 5 CCR";
  EXPECT_EQ(word(0x4002005C), 0u) << "DMA1 channel 5 CNDTR";
  EXPECT_EQ(word(0x40020060), 0u) << "DMA1 channel 5 CPAR";
  EXPECT_EQ(word(0x40020064), 0u) << "DMA1 channel 5 CMAR";
  EXPECT_EQ(word(0x40020000) & (0xFu << 16), 0u) << "DMA1_ISR: channel 5 flags";
  EXPECT_EQ(word(0x40010800), 0x44444444u) << "GPIOA_CRL (SPI1 pins PA4-PA7)";
  EXPECT_EQ(word(0x40010804), 0x44444444u) << "GPIOA_CRH (USART1 pins PA9, PA10)";
  set(0x40021014, 0x14);
  set(0x40021018, 0);
  // PWR (the bootloader's supply watch) likewise, through its APB1 clock.
  set(0x4002101C, 1u << 28);  // PWREN
  EXPECT_EQ(word(0x40007000), 0u) << "PWR_CR: the voltage detector (PVDE, PLS) off";
  set(0x4002101C, 0);
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The application's watchdog (4 s, longer than any flash operation a receive() call may wait for)
// must hold on every chip: LSI is 30-60 kHz (DS5319), so the reload is sized for 60 kHz. The
// application sets it itself: a hang of the running application is reset within about 4 s on the
// fastest LSI, not after the bootloader's 15 s (meant for the longest install), which it would
// otherwise inherit.
TEST_P(Firmware, TheWatchdogLastsFourSecondsAtTheFastestLsi) {
  bluepill::Board b;
  b.load_image(image(GetParam(), "factory.hex"));
  b.power_on();
  ASSERT_EQ(b.run_until_output("app v", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
  std::uint32_t pr = 0, rlr = 0;
  ASSERT_TRUE(b.debug_read(0x40003004, &pr, 4));
  ASSERT_TRUE(b.debug_read(0x40003008, &rlr, 4));
  const double counts_per_s_at_60khz = 60000.0 / (4 << pr);
  EXPECT_GE(rlr / counts_per_s_at_60khz, 4.0) << "PR " << pr << " RLR " << rlr;
  EXPECT_LE(rlr / counts_per_s_at_60khz, 4.5) << "PR " << pr << " RLR " << rlr;
  EXPECT_LE(rlr, 0xFFFu);
}

// With the hardware watchdog option (WDG_SW = 0) the IWDG runs from reset, and the bootloader's
// recovery mode, without an application to go back to, waits for a server for ever: it keeps the
// watchdog fed all that time (its 15 s setting would otherwise reset it, over and over).
TEST_P(Firmware, RecoveryModeKeepsTheHardwareWatchdogFedWhileItWaitsForAServer) {
  bluepill::Config cfg;
  cfg.hardware_watchdog = true;
  cfg.lsi_hz = 60'000;  // the fastest LSI: the shortest timeout
  bluepill::Board b(cfg);
  b.load_image(image(GetParam(), "bootloader.elf"));
  b.power_on();
  ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
  ASSERT_EQ(b.run_for_us(40e6).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
  EXPECT_EQ(b.resets(), 0u) << b.uart_output();
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// A crystal that does not start in time is given up: the bootloader runs on the HSI through the
// PLL and switches HSE and its clock security off (RCC_CR.HSEON, CSSON), so that a crystal that
// starts late is not armed for a clock security NMI the bootloader does not run on.
TEST_P(Firmware, ACrystalThatDoesNotStartIsSwitchedOffWithItsClockSecurity) {
  bluepill::Config cfg;
  cfg.hse = false;
  bluepill::Board b(cfg);
  b.load_image(image(GetParam(), "bootloader.elf"));
  b.power_on();
  ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
  std::uint32_t cr = 0, cfgr = 0;
  ASSERT_TRUE(b.debug_read(0x40021000, &cr, 4));
  ASSERT_TRUE(b.debug_read(0x40021004, &cfgr, 4));
  EXPECT_EQ(cfgr & 0xCu, 0x8u) << "SYSCLK is the PLL";
  EXPECT_EQ(cr & ((1u << 16) | (1u << 19)), 0u) << "RCC_CR: HSEON and CSSON";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

INSTANTIATE_TEST_SUITE_P(Layouts, Firmware, ::testing::Values("internal", "external"));

TEST(Images, IntelHexRecords) {
  const auto segs = bluepill::read_hex(
      ":020000040800F2\n"
      ":0400000001020304F2\n"
      ":02000400AABB95\n"
      ":00000001FF\n");
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].addr, 0x08000000u);
  EXPECT_EQ(segs[0].data, (std::vector<std::uint8_t>{1, 2, 3, 4, 0xAA, 0xBB}));
  EXPECT_THROW(bluepill::read_hex(":0400000001020304F3\n:00000001FF\n"), std::runtime_error) << "bad checksum";
}

}  // namespace

// The port's self-test image (port/stm32f1/selftest), started by the bootloader like an
// application, runs to its "selftest done" line; printed(name) is the 8 hex digits it printed
// after "name=".
// The bootloader, then the self-test image started by it, until "selftest done".
void run_selftest(bluepill::Board& b) {
  const std::string elf = image("internal", "port-selftest.elf");
  ASSERT_TRUE(std::filesystem::exists(elf)) << elf << " missing: build the firmware (make firmware)";
  b.load_image(image("internal", "bootloader.elf"));
  b.load_image(elf);
  b.power_on();
  ASSERT_EQ(b.run_until_output("selftest done", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
}

std::string printed(const bluepill::Board& b, const std::string& name) {
  const auto at = b.uart_output().find(name + "=");
  return at == std::string::npos ? std::string("(missing)") : b.uart_output().substr(at + name.size() + 1, 8);
}

class PortSelfTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(run_selftest(b)); }
  void TearDown() override { EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text(); }
  std::string printed(const std::string& name) const { return ::printed(b, name); }
  bluepill::Board b;
};

// The clone bring-up check of docs/flashing.md: on a chip that refuses 0x0000 over programmed
// flash (which every install needs, to zero the old vector table), "flash zeros over data"
// prints 0. Once done the self-test keeps the bootloader's watchdog fed: no resets (each would
// erase its pages again).
TEST(PortSelfTestOnAClone, SaysWhenZerosCannotBeWrittenOverDataAndThenStaysPut) {
  for (const bool exception : {true, false}) {
    bluepill::Config cfg;
    cfg.zero_over_data = exception;
    cfg.strict = false;  // the refused program is the point
    bluepill::Board b(cfg);
    ASSERT_NO_FATAL_FAILURE(run_selftest(b));
    EXPECT_EQ(printed(b, "flash zeros over data"), exception ? "00000001" : "00000000");
    ASSERT_EQ(b.run_for_us(40e6).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
    EXPECT_EQ(b.resets(), 0u) << b.uart_output();
  }
}

// The port's internal flash driver locks the FPEC again after each erase and each write (FLASH_CR
// back to LOCK alone, PER and PG clear: PM0075 §2.3): a stray store into the flash, or a wild
// pointer, then programs and erases nothing. Seen while the self-test prints each result, after
// the call and before the next flash operation.
TEST(PortSelfTestFlash, TheInternalFlashDriverLocksTheFlashAfterEachEraseAndWrite) {
  bluepill::Board b;
  b.load_image(image("internal", "bootloader.elf"));
  b.load_image(image("internal", "port-selftest.elf"));
  b.power_on();
  for (const char* after : {"flash erase=", "flash write=", "flash odd length=", "flash without hsi="}) {
    SCOPED_TRACE(after);
    ASSERT_EQ(b.run_until_output(after, 3e6).stop, bluepill::Stop::condition) << b.uart_output();
    std::uint32_t cr = 0;
    ASSERT_TRUE(b.debug_read(0x40022010, &cr, 4));
    EXPECT_EQ(cr, 0x80u) << "FLASH_CR";
  }
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// SPI1 taken back by Spi1::init from an application that drove it with DMA and interrupts (its
// CR2 enables, a DMA channel reading SPI1_DR): the W25Q answers the driver again, not the DMA.
TEST_F(PortSelfTest, Spi1InitTakesSpi1BackFromAnApplicationsDmaAndInterrupts) {
  EXPECT_EQ(printed("w25q probe"), "00000001") << b.uart_output();
  EXPECT_EQ(printed("spi1 cr2 after init"), "00000000");
  EXPECT_EQ(printed("w25q probe after the application"), "00000001");
  EXPECT_EQ(printed("spi1 failed"), "00000000");
}

// SPI1 taken back by Spi1::init from an application that used it transmit-only (RM0008 25.3.5:
// TXE before each byte, BSY after the last, DR never read), which leaves RXNE and OVR set
// (RM0008 25.3.10: "the OVR bit is set ... the newly received value is lost"; cleared by a DR
// read then an SR read). Spi1::init neither reads DR nor SR, so its transfer() takes the stale
// RXNE for the first answer and reads every W25Q byte one late: the JEDEC id is shifted
// (0xFF, 0xEF, 0x40 instead of 0xEF, 0x40, 0x15) and the probe fails.
TEST_F(PortSelfTest, Spi1InitTakesSpi1BackFromATransmitOnlyApplication) {
  EXPECT_EQ(printed("spi1 rxne ovr after a tx-only application"), "00000041") << b.uart_output();
  EXPECT_EQ(printed("w25q probe after a tx-only application"), "00000001");
  EXPECT_EQ(printed("w25q id after a tx-only application"), "00ef4015");
}

// The supply watch (port/stm32f1/src/supply.cpp) that an application takes apart after watch()
// (PWR's clock, the detector, its level: HAL code does) says low, and the flash driver writes
// nothing, until watch() again: an update then fails with flash errors instead of writing on a
// supply nobody watches. Before watch() nothing is refused.
TEST_F(PortSelfTest, ASupplyWatchTakenApartByTheApplicationRefusesFlashWrites) {
  EXPECT_EQ(printed("supply low before watch"), "00000000") << b.uart_output();
  EXPECT_EQ(printed("supply low watched"), "00000000");
  EXPECT_EQ(printed("supply low detector off"), "00000001");
  EXPECT_EQ(printed("flash write detector off"), "00000000");
  EXPECT_EQ(printed("supply low lower level"), "00000001");
  EXPECT_EQ(printed("supply low pwr clock off"), "00000001");
  EXPECT_EQ(printed("supply low watched again"), "00000000");
}

// A device interrupt handler defined by its CMSIS name (port/stm32f1/src/irq_names.hpp) is the
// one the vector table calls: the self-test's USART1_IRQHandler ran once for TXE.
TEST_F(PortSelfTest, AnInterruptHandlerDefinedByItsCmsisNameIsCalled) {
  EXPECT_EQ(printed("usart1 irq handler"), "00000001") << b.uart_output();
  EXPECT_EQ(b.resets(), 0u) << "Default_Handler reset the chip";
}

// The CRC unit driver (port/stm32f1/src/crc.cpp), which no shipped image uses, on the board's CRC
// unit, against the core's software CRC-32 and an MSB-first CRC-32/MPEG-2 written here.
TEST_F(PortSelfTest, TheCrcUnitGivesTheZlibCrc32AndMpeg2) {
  auto hex = [](std::uint32_t v) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return std::string(buf);
  };
  const std::string check = "123456789";
  EXPECT_EQ(printed("crc32 check"), "cbf43926");  // the CRC-32 check value
  EXPECT_EQ(printed("crc32 check"), hex(ota::crc32(check.data(), 9)));
  EXPECT_EQ(printed("crc32 words"), hex(ota::crc32(check.data(), 8)));
  EXPECT_EQ(printed("crc32 empty"), hex(0));
  std::uint32_t mpeg2 = 0xFFFFFFFF;
  for (std::uint32_t word : {0x12345678u, 0x9ABCDEF0u})
    for (int byte = 3; byte >= 0; --byte) {  // the word's bytes, most significant first
      mpeg2 ^= ((word >> (8 * byte)) & 0xFFu) << 24;
      for (int bit = 0; bit < 8; ++bit) mpeg2 = (mpeg2 << 1) ^ ((mpeg2 & 0x80000000u) ? 0x04C11DB7u : 0u);
    }
  EXPECT_EQ(printed("mpeg2 words"), hex(mpeg2));
}

// The port's internal flash driver keeps the ota::Flash contract on the board's FLASH controller:
// true only when the flash reads back as asked. 0xFFFF is never programmed, only checked, so
// writing it over data must fail (the core no longer reads back after the port).
TEST_F(PortSelfTest, TheInternalFlashDriverVerifiesWhatItWrites) {
  EXPECT_EQ(printed("flash erase"), "00000001");
  EXPECT_EQ(printed("flash write"), "00000001");
  EXPECT_EQ(printed("flash ffff over data"), "00000000");
  EXPECT_EQ(printed("flash ffff over erased"), "00000001");
  EXPECT_EQ(printed("flash zeros over data"), "00000001");
  EXPECT_EQ(printed("flash odd length"), "00000001");
  EXPECT_EQ(printed("flash odd word"), "ff563412");  // little-endian: 12 34 56 FF
  EXPECT_EQ(printed("flash below limit"), "00000000");
  EXPECT_EQ(printed("flash unaligned"), "00000000");
  // The HSI switched off by the application: the driver switches it on for program and erase
  // (the board reports any flash operation without it).
  EXPECT_EQ(printed("hsi off"), "00000000");
  EXPECT_EQ(printed("flash without hsi"), "00000001");
  EXPECT_EQ(printed("hsi back on"), "00000001");
  // board::flash_map(..., Access::update): what the client library writes through in an application.
  EXPECT_EQ(printed("update map app write"), "00000000");
  EXPECT_EQ(printed("update map app erase"), "00000000");
  EXPECT_EQ(printed("update map boot erase"), "00000000");
  EXPECT_EQ(printed("update map staging write"), "00000001");
}
