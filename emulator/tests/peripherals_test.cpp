// Exceptions, USART1, DMA1, CRC, IWDG, SPI1 + W25Q, UID: each against RM0008's rules.
#include "bluepill/chip.hpp"
#include "helpers.hpp"
#include "sim/w25q_chip.hpp"

using namespace bptest;

TEST(Exceptions, SysTickWakesWfiSvcPendSvAndProcessStack) {
  auto b = board_with("exceptions");
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0), 10u) << "ten SysTick interrupts";
  EXPECT_NEAR(b->now_us(), kClockStartUs + 10'000.0, 300.0) << "at 1 ms intervals, once the clocks run";
  EXPECT_EQ(result(*b, 1) & 0x1FFu, 0u) << "ICSR.VECTACTIVE is 0 in thread mode";
  EXPECT_EQ(result(*b, 2), 2u) << "two SVCs handled";
  EXPECT_EQ(result(*b, 3), 0x9Eu) << "PendSV handled";
  EXPECT_EQ(result(*b, 4), 1u) << "SVC from thread mode on PSP returns to PSP";
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

TEST(Usart, EchoAndOverrun) {
  auto b = board_with("usart_rx");
  ASSERT_EQ(b->run_until_output("R", 1e5).stop, bluepill::Stop::condition);
  b->uart_send("abcde");
  ASSERT_EQ(b->run_until_output("bcdef", 1e5).stop, bluepill::Stop::condition);
  ASSERT_EQ(b->run_until_output("O", 1e5).stop, bluepill::Stop::condition);
  b->uart_send("xyz");
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "RbcdefO");
  EXPECT_EQ(result(*b, 0) & 0x28u, 0x28u) << "RXNE and ORE";
  EXPECT_EQ(result(*b, 1), static_cast<std::uint32_t>('x')) << "the first byte stays, the later ones are lost";
  EXPECT_EQ(result(*b, 2) & 0x28u, 0u) << "SR then DR read clears RXNE and ORE";
  EXPECT_EQ(b->diagnostics().warnings(), 2u) << "each lost byte is reported";
}

// Lost, as on the part; but before the firmware has ever turned the receiver on that is normal
// (a server talks while the board boots), so it is said as info, not as a warning.
TEST(Usart, BytesSentBeforeTheReceiverIsOnAreLost) {
  auto b = board_with("exceptions");  // never enables USART1
  b->uart_send("early");
  run_to_end(*b);
  EXPECT_EQ(b->uart_rx_lost(), 5u);
  EXPECT_EQ(b->diagnostics().warnings(), 0u);
  std::size_t said = 0;
  for (const auto& d : b->diagnostics().all())
    said += d.severity == bluepill::Severity::info && d.text.find("the receiver is not on yet") != std::string::npos;
  EXPECT_EQ(said, 1u) << "reported once per burst";
}

// Once the receiver has been on, bytes lost because the firmware switched it off are a warning.
TEST(Usart, BytesLostAfterTheReceiverWasSwitchedOffAreAWarning) {
  auto b = board_with("usart_rx");
  ASSERT_EQ(b->run_until_output("R", 1e5).stop, bluepill::Stop::condition);
  std::uint32_t cr1 = 0;
  ASSERT_TRUE(b->debug_read(0x4001380C, &cr1, 4));
  cr1 &= ~(1u << 2);  // RE off, as firmware would
  ASSERT_TRUE(b->debug_write(0x4001380C, &cr1, 4));
  b->uart_send("a");
  b->run_for_us(2000);
  EXPECT_EQ(b->uart_rx_lost(), 1u);
  EXPECT_EQ(b->diagnostics().warnings(), 1u);
}

TEST(Usart, LinkLatencyDelaysBothDirections) {
  bluepill::Config cfg;
  cfg.latency_ms = 50;
  auto b = board_with("usart_rx", cfg);
  double r_at = 0;
  b->on_uart_tx = [&](std::uint8_t c) {
    if (c == 'R') r_at = b->now_us();
  };
  ASSERT_EQ(b->run_until([&] { return r_at > 0; }, 1e6).stop, bluepill::Stop::condition);
  EXPECT_NEAR(r_at, kClockStartUs + 50'000.0, 1'000.0)
      << "sent once the clocks run (and 0.1 ms more), seen by the far end 50 ms later";
  b->uart_send("a");
  const double sent = b->now_us();
  ASSERT_EQ(b->run_until_output("b", 1e6).stop, bluepill::Stop::condition);
  EXPECT_NEAR(b->now_us() - sent, 50'000.0 + 2 * 87.0, 100.0);
}

// A USART whose clock is gated off receives nothing (bytes that arrive then are lost), and one
// held in reset by its RCC reset bit (RM0008 §7.3.4) takes no register access until the bit is
// cleared: the board reports the access as an error.
TEST(Usart, NothingIsReceivedWithTheClockOffAndNothingAccessedWhileHeldInReset) {
  auto b = board_with("usart_gated");
  ASSERT_EQ(b->run_until_output("R", 1e5).stop, bluepill::Stop::condition);
  b->uart_send("abc");
  const auto r = b->run_for_us(1e5);
  ASSERT_EQ(r.stop, bluepill::Stop::error) << bluepill::to_string(r.stop);
  EXPECT_NE(r.message.find("held in reset"), std::string::npos) << r.message;
  EXPECT_EQ(result(*b, 1), 1u) << "stopped at the write to CR1";
  EXPECT_EQ(result(*b, 0) & 0x20u, 0u) << "RXNE: a byte was received with the clock off";
  EXPECT_EQ(b->uart_rx_lost(), 3u);
}

TEST(Dma, CircularUsartReception) {
  auto b = board_with("dma_rx");
  ASSERT_EQ(b->run_until_output("R", 1e5).stop, bluepill::Stop::condition);
  b->uart_send("ABCDEFGHIJKLMNOPQRST");
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "RABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(result(*b, 0) & 0x70000u, 0x70000u) << "GIF5, TCIF5, HTIF5";
  EXPECT_EQ(result(*b, 1), 12u) << "CNDTR reloaded at 16, four more bytes";
  EXPECT_EQ(b->diagnostics().warnings(), 0u) << "no overrun with DMA";
}

// An overrun stops the receiver (RM0008 §27.3.3; silicon raises no RXNE while ORE is set), and
// the DMA's reads of DR do not clear ORE: only the SR-then-DR sequence does.
TEST(Dma, AnOverrunLeavesTheReceiverDeafUntilSrThenDrAreRead) {
  auto b = board_with("dma_rx");
  ASSERT_EQ(b->run_until_output("R", 1e5).stop, bluepill::Stop::condition);
  b->usart_overrun();
  b->uart_send("0123456789");
  b->run_for_us(5'000);
  EXPECT_EQ(b->uart_output(), "R") << "nothing received after the overrun";
  std::uint32_t sr = 0, dr = 0;
  ASSERT_TRUE(b->debug_read(0x40013800, &sr, 4));
  EXPECT_EQ(sr & 0x28u, 0x08u) << "ORE set, RXNE clear";
  ASSERT_TRUE(b->debug_read(0x40013804, &dr, 4));  // SR then DR: ORE cleared
  b->uart_send("ABCDEFGHIJKLMNOPQRST");
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "RABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(b->diagnostics().warnings(), 2u) << "the overrun, and the bytes lost while ORE was set";
}

namespace {
// CRC-32/MPEG-2 over bytes, written independently of the model: the STM32 unit computes it
// over each word's bytes, most significant first.
std::uint32_t crc_mpeg2(const std::vector<std::uint8_t>& bytes) {
  std::uint32_t crc = 0xFFFFFFFF;
  for (std::uint8_t byte : bytes) {
    crc ^= static_cast<std::uint32_t>(byte) << 24;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
  }
  return crc;
}
}  // namespace

TEST(Crc, MatchesCrc32Mpeg2) {
  auto b = board_with("crc");
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0), 0xFFFFFFFFu);
  EXPECT_EQ(result(*b, 1), crc_mpeg2({'1', '2', '3', '4', '5', '6', '7', '8', 0xDE, 0xAD, 0xBE, 0xEF}));
  EXPECT_EQ(result(*b, 2), crc_mpeg2({0x12, 0x34, 0x56, 0x78}));
}

TEST(Iwdg, StarvedWatchdogResetsTheChip) {
  auto b = board_with("iwdg");
  run_to_end(*b, 1e6);
  EXPECT_EQ(b->uart_output(), "start\nstop feeding\nwatchdog reset\n");
  EXPECT_EQ(b->resets(), 1u);
  EXPECT_EQ(b->last_reset(), bluepill::ResetCause::watchdog);
  EXPECT_EQ(result(*b, 0) & 0xFC000000u, 0u) << "RMVF cleared the reset flags";
  // Fed every 5 ms for 25 ms, then 10 ms without food, then a reboot and a line at 115200, each
  // boot starting the clocks.
  EXPECT_GT(b->now_us(), 2 * kClockStartUs + 35'000.0);
  EXPECT_LT(b->now_us(), 2 * kClockStartUs + 38'000.0);
}

// RM0008 §19.4.4: PR and RLR take a new value only once SR.PVU / SR.RVU say the previous one
// reached the watchdog (up to 5 LSI periods): a write before that is lost on silicon.
TEST(Iwdg, APrescalerOrReloadWrittenDuringItsUpdateIsAnError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("exceptions", cfg);
  auto set = [&](std::uint32_t addr, std::uint32_t v) { ASSERT_TRUE(b->debug_write(addr, &v, 4)); };
  set(0x40003000, 0x5555);  // KR: unlock PR and RLR
  set(0x40003004, 3);       // PR
  set(0x40003008, 0x800);   // RLR: another register, allowed
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
  set(0x40003004, 4);  // PVU still set
  set(0x40003008, 0x900);  // RVU still set
  EXPECT_EQ(b->diagnostics().errors(), 2u) << b->diagnostics().error_text();
  EXPECT_NE(b->diagnostics().error_text().find("PVU"), std::string::npos);
  ASSERT_EQ(b->run_for_us(1000).stop, bluepill::Stop::limit);  // > 5 periods of the 40 kHz LSI
  set(0x40003004, 4);
  EXPECT_EQ(b->diagnostics().errors(), 2u) << "after the update a new value is taken";
}

// RM0008 19.4.4: a new prescaler reaches the watchdog only once PVU clears; a reload before that
// still counts with the old one. Started at its reset values (/4, 0xFFF: 410 ms at 40 kHz) and
// set to /256 (26 s): reloaded at once it resets the chip after 410 ms, reloaded after the
// update it does not.
TEST(Iwdg, AReloadBeforeTheUpdateHasLandedUsesThePreviousValues) {
  for (const bool wait_for_pvu : {false, true}) {
    auto b = board_with("exceptions");
    auto set = [&](std::uint32_t addr, std::uint32_t v) { ASSERT_TRUE(b->debug_write(addr, &v, 4)); };
    set(0x40003000, 0xCCCC);
    set(0x40003000, 0x5555);
    set(0x40003004, 6);
    if (wait_for_pvu) {
      ASSERT_NE(b->run_for_us(1000).stop, bluepill::Stop::error);
    }
    set(0x40003000, 0xAAAA);
    run_to_end(*b);  // the program stops at its breakpoint; time goes on
    const auto r = b->run_until([&] { return b->resets() > 0; }, 600'000);
    EXPECT_EQ(b->resets(), wait_for_pvu ? 0u : 1u) << (wait_for_pvu ? "after PVU" : "before PVU") << " "
                                                   << bluepill::to_string(r.stop) << " at " << b->now_us();
    EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
  }
}

TEST(Spi, W25qThroughSpi1) {
  auto b = board_with("spi_w25q");
  run_to_end(*b, 2e6);
  EXPECT_EQ(result(*b, 0), 0xEF4015u) << "JEDEC id of a W25Q16";
  EXPECT_GT(result(*b, 1), 100u) << "BUSY polled during the sector erase";
  EXPECT_NEAR(result(*b, 2), 45e-3 * 72e6, 0.002 * 72e6) << "tSE typ 45 ms";
  EXPECT_NEAR(result(*b, 3), 0.7e-3 * 72e6, 0.05e-3 * 72e6) << "tPP typ 0.7 ms";
  const auto mem = b->w25q().bytes();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(mem[0x10F0 + i], 0xA0 + i);
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; ++i) sum = sum * 31 + mem[0x10EE + i];
  EXPECT_EQ(result(*b, 4), sum) << "read back through SPI";
  // tPUW: the chip ignored 0x06 for 10 ms from power-on (the program reached it ~2.3 ms in);
  // later ones take at once.
  EXPECT_GT(result(*b, 5), 1u);
  EXPECT_EQ(b->w25q().write_enables_ignored(), result(*b, 5) - 1);
  EXPECT_NEAR(result(*b, 6), (10'000 - kClockStartUs) * 72, 0.2e-3 * 72e6) << "write enable took at the end of tPUW";
  EXPECT_EQ(result(*b, 7), 1u);
  EXPECT_EQ(b->w25q().violations(), 0u) << b->w25q().last_violation();
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

// DS5319: SPI1's master clock is 18 MHz at most; the W25Q samples in SPI modes 0 and 3 only.
TEST(Spi, AClockAboveEighteenMegahertzOrAModeTheW25qDoesNotSpeakIsAnError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("spi_w25q", cfg);
  run_to_end(*b, 2e6);  // SPI1 set up by the program: 72 MHz / 8 = 9 MHz, mode 0
  ASSERT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
  auto set = [&](std::uint32_t addr, std::uint32_t v) { ASSERT_TRUE(b->debug_write(addr, &v, 4)); };
  constexpr std::uint32_t kOn = (1u << 2) | (1u << 8) | (1u << 9) | (1u << 6);  // MSTR SSI SSM SPE
  set(0x40013000, kOn);  // BR = 0: 72 MHz / 2
  set(0x4001300C, 0x05);
  ASSERT_EQ(b->run_for_us(10).stop, bluepill::Stop::limit);
  EXPECT_NE(b->diagnostics().error_text().find("SCK at 36000000 Hz"), std::string::npos) << b->diagnostics().error_text();
  b->diagnostics().clear();
  set(0x40013000, kOn | (2u << 3) | 1u);  // 9 MHz, CPHA = 1: mode 1
  set(0x40010810, 1u << 20);              // PA4 low: the W25Q selected
  set(0x4001300C, 0x05);
  ASSERT_EQ(b->run_for_us(10).stop, bluepill::Stop::limit);
  set(0x40010810, 1u << 4);
  EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();
  EXPECT_NE(b->diagnostics().error_text().find("mode 1"), std::string::npos) << b->diagnostics().error_text();
}

// RM0008 9.1.11: SPI1's SCK and MOSI are alternate-function push-pull outputs (open drain drives
// no high level without a pull-up), MISO a digital input (in analog mode it reads 0). Either set
// up otherwise is an error at the first frame, said once.
TEST(Spi, PinsThatCannotCarryTheBusAreAnError) {
  struct Case {
    int pin;
    std::uint32_t cnf_mode;  // the pin's 4 bits in GPIOA_CRL
    const char* says;
  };
  for (const Case c : {Case{5, 0xF, "PA5 (SCK) / PA7 (MOSI) are not alternate-function push-pull"},
                       Case{7, 0xF, "PA5 (SCK) / PA7 (MOSI) are not alternate-function push-pull"},
                       Case{6, 0x0, "PA6 (MISO) is not a digital input"}}) {
    SCOPED_TRACE(c.pin);
    bluepill::Config cfg;
    cfg.strict = false;
    auto b = board_with("spi_w25q", cfg);
    run_to_end(*b, 2e6);  // its set-up (PA5/PA7 AF push-pull, PA6 input with pull-up) is clean
    ASSERT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
    std::uint32_t crl = 0;
    ASSERT_TRUE(b->debug_read(0x40010800, &crl, 4));
    crl = (crl & ~(0xFu << (4 * c.pin))) | (c.cnf_mode << (4 * c.pin));
    ASSERT_TRUE(b->debug_write(0x40010800, &crl, 4));
    for (int i = 0; i < 2; ++i) {
      const std::uint32_t jedec = 0x9F;
      ASSERT_TRUE(b->debug_write(0x4001300C, &jedec, 4));
      ASSERT_EQ(b->run_for_us(10).stop, bluepill::Stop::limit);
    }
    EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();
    EXPECT_NE(b->diagnostics().error_text().find(c.says), std::string::npos) << b->diagnostics().error_text();
  }
}

// What the W25Q model counts as a broken rule is a board error, like a FLASH controller rule:
// here a page program without write enable, sent the way SPI1 passes bytes to the chip.
TEST(Spi, AW25qRuleBrokenByTheFirmwareIsABoardError) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("exceptions", cfg);
  const std::uint8_t program[5] = {0x02, 0x00, 0x10, 0x00, 0xAB};
  b->chip()->w25q_select(true);
  b->chip()->w25q_transfer(program, nullptr, sizeof program);
  b->chip()->w25q_select(false);
  EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();
  EXPECT_NE(b->diagnostics().error_text().find("W25Q: 0x02 page program without WEL"), std::string::npos)
      << b->diagnostics().error_text();
  EXPECT_EQ(b->w25q().bytes()[0x1000], 0xFF) << "and the chip ignored it";
}

// The supply sags below the W25Q16JV's 2.7 V minimum: a program started then is an error; the
// same program at 3.3 V is not.
TEST(Spi, AW25qProgramOnASaggingSupplyIsABoardError) {
  bluepill::Config cfg;
  cfg.strict = false;
  cfg.w25q_write_inhibit_us = 0;  // the program below starts at once, with no wait for tPUW
  auto b = board_with("exceptions", cfg);
  auto program = [&](std::uint32_t addr) {
    const std::uint8_t wren = 0x06;
    const std::uint8_t cmd[5] = {0x02, static_cast<std::uint8_t>(addr >> 16), static_cast<std::uint8_t>(addr >> 8),
                                 static_cast<std::uint8_t>(addr), 0x5A};
    b->chip()->w25q_select(true);
    b->chip()->w25q_transfer(&wren, nullptr, 1);
    b->chip()->w25q_select(false);
    b->chip()->w25q_select(true);
    b->chip()->w25q_transfer(cmd, nullptr, sizeof cmd);
    b->chip()->w25q_select(false);
    ASSERT_EQ(b->run_for_us(5000).stop, bluepill::Stop::limit);  // the program ends
  };
  program(0x2000);
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
  b->set_supply_volts(2.6);
  program(0x2100);
  EXPECT_EQ(b->diagnostics().errors(), 1u) << b->diagnostics().error_text();
  EXPECT_NE(b->diagnostics().error_text().find("started at 2.60 V"), std::string::npos) << b->diagnostics().error_text();
}

// PWR's voltage detector (RM0008 5.4.2/5.4.3) at its highest level: PVDO set below 2.78 V, cleared
// above 2.88 V, and in between it keeps its state.
TEST(Pwr, TheVoltageDetectorFollowsTheSupplyWithHysteresis) {
  auto b = board_with("exceptions");
  auto set = [&](std::uint32_t addr, std::uint32_t v) { ASSERT_TRUE(b->debug_write(addr, &v, 4)); };
  auto pvdo = [&] {
    std::uint32_t v = 0;
    EXPECT_TRUE(b->debug_read(0x40007004, &v, 4));
    return (v >> 2) & 1u;
  };
  set(0x4002101C, 1u << 28);             // RCC_APB1ENR.PWREN
  set(0x40007000, 1u << 4 | 7u << 5);    // PWR_CR: PVDE, PLS = 111
  EXPECT_EQ(pvdo(), 0u);
  b->set_supply_volts(2.80);
  EXPECT_EQ(pvdo(), 0u);
  b->set_supply_volts(2.70);
  EXPECT_EQ(pvdo(), 1u);
  b->set_supply_volts(2.85);
  EXPECT_EQ(pvdo(), 1u) << "not yet above the rising threshold";
  b->set_supply_volts(2.90);
  EXPECT_EQ(pvdo(), 0u);
  b->set_supply_volts(2.70);
  set(0x40007000, 0);  // PVD off: no output
  EXPECT_EQ(pvdo(), 0u);
  EXPECT_THROW(b->set_supply_volts(1.9), std::invalid_argument);
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

TEST(SysMem, UniqueIdAndFlashSize) {
  bluepill::Config cfg;
  cfg.uid = {0x11223344, 0x55667788, 0x99AABBCC};
  auto b = board_with("uid", cfg);
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "uid 112233445566778899aabbcc flash 00000040\n");
}

TEST(Errors, UnmodelledPeripheralIsReported) {
  auto b = board_with("unmodelled");
  const auto r = b->run_for_us(1000);
  ASSERT_EQ(r.stop, bluepill::Stop::error);
  EXPECT_NE(r.message.find("0x40000000"), std::string::npos) << r.message;
}

TEST(Nvic, UsartReceiveInterruptAndDmaTransmit) {
  auto b = board_with("usart_irq");
  ASSERT_EQ(b->run_until_output("R", 1e5).stop, bluepill::Stop::condition);
  b->uart_send("hello dma\n");
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "RHELLO DMA\n");
  EXPECT_EQ(result(*b, 0), 1u) << "one DMA transfer-complete interrupt";
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

// DS5319: HSE start-up 2 ms typical (Config::hse_startup_us), PLL lock 200 us and HSI start-up
// 2 us at most. A firmware that waits too briefly for the crystal runs on the HSI here as on
// silicon. Cycle counts: 8 MHz before the switch to the PLL, 72 MHz after.
TEST(Rcc, OscillatorsAndThePllTakeTheirStartUpTimes) {
  for (const double hse_us : {2'000.0, 15'000.0}) {
    bluepill::Config cfg;
    cfg.hse_startup_us = hse_us;
    auto b = board_with("clock_startup", cfg);
    run_to_end(*b);
    EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
    EXPECT_EQ(result(*b, 0), 3u) << "HSION stays set (and HSIRDY) while the HSI clocks the system";
    EXPECT_EQ(result(*b, 1), 0u) << "HSERDY is not set at once";
    EXPECT_EQ(result(*b, 2), 1u) << "SW = HSE, SWS still HSI: the HSE is not ready";
    EXPECT_EQ(result(*b, 8), 5u) << "SW = SWS = HSE once it is ready (RM0008 7.2.6)";
    EXPECT_NEAR(result(*b, 3), hse_us * 8, 40.0) << "HSE start-up in 8 MHz cycles";
    EXPECT_NEAR(result(*b, 4), 200 * 8, 40.0) << "PLL lock in 8 MHz cycles";
    EXPECT_EQ(result(*b, 5), 0xAu) << "SW = SWS = PLL";
    EXPECT_EQ(result(*b, 6), 0u) << "HSI off once it no longer clocks the system";
    EXPECT_NEAR(result(*b, 7), 2 * 72, 40.0) << "HSI start-up in 72 MHz cycles";
  }
}
