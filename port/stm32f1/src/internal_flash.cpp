// Programming sequences of PM0075 (the flash programming manual): the FPEC is unlocked by KEY1
// then KEY2 in KEYR; a page erase sets PER, writes the page address in AR and sets STRT;
// programming sets PG and writes one half-word. The CPU stalls on flash fetches while BSY is set,
// so the waits below usually return at once; their bound only guards against a stuck controller.
#include "stm32f1/internal_flash.hpp"

#include <cstring>

#include "reg.hpp"
#include "stm32f1/supply.hpp"

namespace stm32f1 {
namespace {

using namespace reg;

constexpr std::uint32_t kBusyLoops = 20'000'000;  // >= 1 s at 72 MHz, far above a 40 ms erase
constexpr std::uint32_t kErrors = flash_sr::PGERR | flash_sr::WRPRTERR;

// PM0075: program and erase need the HSI running, whatever SYSCLK runs on (an application may have
// switched it off after moving to HSE/PLL); without it they silently fail.
void unlock() {
  RCC().CR |= rcc_cr::HSION;
  for (std::uint32_t i = 0; !(RCC().CR & rcc_cr::HSIRDY) && i < kBusyLoops; ++i) {
  }
  if (FLASH().CR & flash_cr::LOCK) {
    FLASH().KEYR = flash_keyr::KEY1;
    FLASH().KEYR = flash_keyr::KEY2;
  }
}

void lock() { FLASH().CR = flash_cr::LOCK; }

// Waits for the end of the operation, then reports and clears EOP/PGERR/WRPRTERR. BSY may rise a
// cycle after the write that starts the operation (documented for the F105/F107 and seen on
// F103 clones): the first read of SR is a dummy one.
bool finish() {
  reg::Flash& f = FLASH();
  static_cast<void>(f.SR);
  std::uint32_t i = 0;
  while ((f.SR & flash_sr::BSY) && ++i < kBusyLoops) {
  }
  const std::uint32_t sr = f.SR;
  f.SR = flash_sr::EOP | kErrors;  // write 1 to clear
  return !(sr & flash_sr::BSY) && !(sr & kErrors);
}

}  // namespace

bool InternalFlash::read(std::uint32_t addr, void* dst, std::size_t len) {
  if (!contains(addr, len)) return false;
  std::memcpy(dst, reinterpret_cast<const void*>(addr), len);
  return true;
}

bool InternalFlash::write(std::uint32_t addr, const void* src, std::size_t len) {
  if (addr % 2 != 0 || !writable(addr, (len + 1) & ~std::size_t{1}) || supply::low()) return false;
  const auto* bytes = static_cast<const std::uint8_t*>(src);
  bool ok = true;
  unlock();
  for (std::size_t i = 0; ok && i < len; i += 2) {
    const std::uint8_t hi = i + 1 < len ? bytes[i + 1] : 0xFF;  // odd tail padded with 0xFF
    const auto value = static_cast<std::uint16_t>(bytes[i] | hi << 8);
    auto* cell = reinterpret_cast<volatile std::uint16_t*>(addr + i);
    if (value != 0xFFFF) {  // 0xFFFF needs no programming, only the check that it is erased
      FLASH().CR = flash_cr::PG;
      *cell = value;
      ok = finish();
    }
    ok = ok && *cell == value;
  }
  lock();  // also clears PG
  return ok;
}

bool InternalFlash::erase(std::uint32_t addr) {
  if (addr % ota::kFlashPage != 0 || !page_writable(addr) || supply::low()) return false;
  unlock();
  reg::Flash& f = FLASH();
  f.CR = flash_cr::PER;
  f.AR = addr;
  f.CR = flash_cr::PER | flash_cr::STRT;
  bool ok = finish();
  lock();
  const auto* word = reinterpret_cast<const volatile std::uint32_t*>(addr);
  for (std::uint32_t i = 0; ok && i < ota::kFlashPage / 4; ++i) ok = word[i] == 0xFFFFFFFF;
  return ok;
}

}  // namespace stm32f1
