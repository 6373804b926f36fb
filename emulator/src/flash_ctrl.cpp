#include "bluepill/flash_ctrl.hpp"

#include <cstring>
#include <iterator>

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kKey1 = 0x45670123, kKey2 = 0xCDEF89AB;
constexpr std::uint32_t kBsy = 1u << 0, kPgerr = 1u << 2, kWrprterr = 1u << 4, kEop = 1u << 5;
constexpr std::uint32_t kPg = 1u << 0, kPer = 1u << 1, kMer = 1u << 2, kOptpg = 1u << 4, kOpter = 1u << 5,
                        kStrt = 1u << 6, kLock = 1u << 7, kOptwre = 1u << 9, kErrie = 1u << 10,
                        kEopie = 1u << 12;
}  // namespace

void FlashCtrl::reset() {
  acr_ = 0x30;
  sr_ = ar_ = 0;
  cr_ = kLock;
  key_state_ = 0;
  key_dead_ = false;
  op_ = Op::none;
  chip_.cancel(event_);
}

std::uint32_t FlashCtrl::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: return (acr_ & 0x1F) | ((acr_ & 0x10) << 1);  // PRFTBS follows PRFTBE
    case 0x04: case 0x08: return 0;  // KEYR/OPTKEYR are write-only
    case 0x0C: return sr_ | (busy() ? kBsy : 0);
    case 0x10: return cr_;
    case 0x14: return ar_;
    case 0x1C:  // OBR: no read-out protection, USER bits set (WDG_SW clear: hardware watchdog)
      return chip_.config().hardware_watchdog ? 0x03FFFFF8u : 0x03FFFFFCu;
    case 0x20: return ~chip_.config().write_protect;  // WRPR: 0 = protected
    default: return unmodelled_read(off);
  }
}

void FlashCtrl::write32(std::uint32_t off, std::uint32_t v) {
  switch (off) {
    case 0x00: {
      // RM0008 3.3.3: the wait states must suit SYSCLK at all times (they are raised before the
      // clock and lowered after it), and the prefetch buffer may be switched on or off only
      // below 24 MHz without an AHB prescaler.
      const std::uint32_t sysclk = chip_.rcc.sysclk();
      const std::uint32_t need = chip_.rcc.wait_states_needed();
      if ((v & 7) > 2) error("FLASH_ACR.LATENCY " + std::to_string(v & 7) + " is reserved");
      else if ((v & 7) < need)
        error("FLASH_ACR.LATENCY lowered to " + std::to_string(v & 7) + " while SYSCLK runs at " + std::to_string(sysclk) +
              " Hz (needs " + std::to_string(need) + "): the CPU would read wrong instructions");
      if (((v ^ acr_) & 0x10) && (sysclk >= 24'000'000 || chip_.rcc.hclk() != sysclk))
        error("FLASH_ACR.PRFTBE switched at SYSCLK " + std::to_string(sysclk) +
              " Hz: only below 24 MHz and without an AHB prescaler (RM0008 3.3.3)");
      // RM0008 3.3.3: half cycle access "can be used only with a low-frequency clock of 8 MHz or
      // less. It can be generated from the HSI or the HSE but not from the PLL", and not with an
      // AHB prescaler.
      if ((v & 0x08) && !chip_.rcc.half_cycle_allowed())
        error("FLASH_ACR.HLFCYA set while SYSCLK runs at " + std::to_string(sysclk) +
              " Hz from the PLL or with an AHB prescaler: half cycle access is for an undivided 8 MHz HSI/HSE only");
      acr_ = v & 0x1F;
      break;
    }
    case 0x04:
      if (key_dead_) {
        error("FLASH_KEYR written after a wrong key sequence: the FPEC stays locked until reset");
      } else if (key_state_ == 0 && v == kKey1) {
        key_state_ = 1;
      } else if (key_state_ == 1 && v == kKey2) {
        key_state_ = 2;
        cr_ &= ~kLock;
      } else {
        key_dead_ = true;
        key_state_ = 0;
        cr_ |= kLock;
        error("wrong FLASH_KEYR sequence (" + hex32(v) + "): the FPEC is locked until the next reset (bus error)");
      }
      break;
    case 0x08: error("option byte programming (FLASH_OPTKEYR) is not modelled"); break;
    case 0x0C:
      sr_ &= ~(v & (kPgerr | kWrprterr | kEop));
      update_irq();
      break;
    case 0x10: {
      if (cr_ & kLock) {
        if (v & ~kLock) error("FLASH_CR written (" + hex32(v) + ") while locked: ignored (unlock with KEYR first)");
        break;
      }
      if (busy()) {
        error("FLASH_CR written (" + hex32(v) + ") while BSY: wait for the operation to end");
        break;
      }
      cr_ = v & (kPg | kPer | kMer | kOptpg | kOpter | kStrt | kLock | kOptwre | kErrie | kEopie);
      if (cr_ & (kOptpg | kOpter)) error("option byte programming/erase is not modelled");
      if (__builtin_popcount(cr_ & (kPg | kPer | kMer)) > 1)
        error("FLASH_CR " + hex32(cr_) + " sets more than one of PG, PER, MER");
      if (cr_ & kLock) key_state_ = 0;
      if ((cr_ & kStrt) && !hsi_running("an erase at", ar_)) {
        cr_ &= ~kStrt;
      } else if (cr_ & kStrt) {
        if ((cr_ & kPer) && protected_page(ar_)) {
          cr_ &= ~kStrt;
          sr_ |= kWrprterr;
          error("page erase at " + hex32(ar_) + ": the page is write-protected (WRPRTERR)");
        } else if ((cr_ & kMer) && chip_.config().write_protect != 0) {
          cr_ &= ~kStrt;
          sr_ |= kWrprterr;
          error("mass erase with write-protected pages (WRPRTERR)");
        } else if (cr_ & kPer) begin(Op::erase, ar_ & ~(kFlashPageSize - 1), 0, chip_.flash_erase_time());
        else if (cr_ & kMer) begin(Op::mass_erase, kFlashBase, 0, chip_.flash_erase_time());
        else {
          error("FLASH_CR.STRT without PER or MER");
          cr_ &= ~kStrt;
        }
      }
      update_irq();
      break;
    }
    case 0x14:
      if (busy()) error("FLASH_AR written while BSY");
      ar_ = v;
      if ((cr_ & kPer) && !(v >= kFlashBase && v - kFlashBase < kFlashSize))
        error("FLASH_AR " + hex32(v) + " is not in the flash");
      break;
    default: unmodelled_write(off, v); break;
  }
}

// PM0075: the HSI must be on for program and erase operations (it times them); on silicon they
// fail without it, silently. Here: reported, and nothing happens.
bool FlashCtrl::hsi_running(const char* what, std::uint32_t addr) {
  if (chip_.rcc.hsi_ready()) return true;
  error(std::string(what) + " " + hex32(addr) + " with the HSI not running (RCC_CR.HSIRDY = 0): PM0075 requires the HSI on "
        "for flash program/erase; nothing is done");
  return false;
}

void FlashCtrl::store(std::uint32_t addr, unsigned size, std::uint32_t value) {
  if (busy()) {  // the bus stalls until the running operation has finished
    chip_.sched().now = std::max(chip_.now(), done_at_);
    chip_.cancel(event_);
    complete();
  }
  if (!(cr_ & kPg)) {
    error("write of " + hex32(value) + " to flash at " + hex32(addr) +
          " without FLASH_CR.PG (flash is written through the FPEC only)");
    return;
  }
  if (size != 2 || (addr & 1)) {
    error(std::to_string(size) + "-byte write to flash at " + hex32(addr) +
          ": the FPEC programs aligned half-words only (bus error on silicon)");
    return;
  }
  if (!hsi_running("programming", addr)) return;
  if (protected_page(addr)) {
    sr_ |= kWrprterr;
    error("programming " + hex32(addr) + ": the page is write-protected (WRPRTERR), nothing written");
    update_irq();
    return;
  }
  const auto v = static_cast<std::uint16_t>(value);
  const auto& mem = chip_.board().flash.bytes();
  const std::uint32_t off = addr - kFlashBase;
  const auto old = static_cast<std::uint16_t>(mem[off] | mem[off + 1] << 8);
  if (old != 0xFFFF && (v != 0 || !chip_.config().zero_over_data)) {
    sr_ |= kPgerr;
    error("programming " + hex32(v) + " over a non-erased half-word at " + hex32(addr) + " (reads " + hex32(old) +
          "): PGERR, nothing written");
    update_irq();
    return;
  }
  begin(Op::program, addr, v, chip_.flash_program_time());
}

bool FlashCtrl::protected_page(std::uint32_t addr) const {
  if (addr < kFlashBase || addr - kFlashBase >= kFlashSize) return false;
  const std::uint32_t page = (addr - kFlashBase) / kFlashPageSize;
  return (chip_.config().write_protect >> (page / 4)) & 1u;
}

bool FlashCtrl::worn_page(std::uint32_t addr) const {
  for (const std::uint32_t w : chip_.config().worn_pages)
    if ((w & ~(kFlashPageSize - 1)) == (addr & ~(kFlashPageSize - 1))) return true;
  return false;
}

// A worn page's cells no longer all lose their charge in tERASE: some of those programmed stay
// programmed. The FPEC does not look (PM0075: EOP, no error flag); a read-back finds them.
void FlashCtrl::erase_page(std::uint32_t addr) {
  auto& array = chip_.board().flash;
  if (!worn_page(addr)) {
    array.erase_page(addr);
    return;
  }
  const auto mem = array.bytes();
  const std::uint32_t off = addr - kFlashBase;
  std::uint32_t old[kFlashPageSize / kWornStride];
  for (std::uint32_t i = 0; i < std::size(old); ++i) std::memcpy(&old[i], &mem[off + i * kWornStride], 4);
  array.erase_page(addr);
  for (std::uint32_t i = 0; i < std::size(old); ++i) {
    const std::uint32_t left = old[i] | ~kWornBits;
    std::memcpy(&mem[off + i * kWornStride], &left, 4);
  }
}

void FlashCtrl::begin(Op op, std::uint32_t addr, std::uint16_t value, Cycles duration) {
  op_ = op;
  op_addr_ = addr;
  op_value_ = value;
  done_at_ = chip_.now() + duration;
  event_ = chip_.at(done_at_, [this](Cycles) {
    event_ = 0;
    complete();
  });
  if (chip_.executing_from_flash()) chip_.stall_until(done_at_);
}

void FlashCtrl::complete() {
  auto& array = chip_.board().flash;
  switch (op_) {
    case Op::program:
      if (array.program_halfword(op_addr_, op_value_) != sim::InternalFlash::Program::ok)
        error("flash program at " + hex32(op_addr_) + " failed: " + array.last_violation());
      chip_.flash_changed(op_addr_ - kFlashBase, 2);
      break;
    case Op::erase:
      erase_page(op_addr_);
      chip_.flash_changed(op_addr_ - kFlashBase, kFlashPageSize);
      break;
    case Op::mass_erase:
      for (std::uint32_t a = kFlashBase; a < kFlashBase + kFlashSize; a += kFlashPageSize) erase_page(a);
      chip_.flash_changed(0, kFlashSize);
      break;
    case Op::none: return;
  }
  op_ = Op::none;
  cr_ &= ~kStrt;
  sr_ |= kEop;
  update_irq();
}

void FlashCtrl::power_cut(std::mt19937_64& rng) {
  auto& array = chip_.board().flash;
  switch (op_) {
    case Op::program: array.tear_program(op_addr_, op_value_, rng); break;
    case Op::erase: array.tear_erase(op_addr_, rng); break;
    case Op::mass_erase:
      for (std::uint32_t a = kFlashBase; a < kFlashBase + kFlashSize; a += kFlashPageSize) array.tear_erase(a, rng);
      break;
    case Op::none: return;
  }
  chip_.report(Severity::info, "power lost during a flash " +
                                   std::string(op_ == Op::program ? "half-word program at " : "erase at ") +
                                   hex32(op_addr_) + ": torn");
  op_ = Op::none;
  chip_.cancel(event_);
}

void FlashCtrl::update_irq() {
  chip_.irq(irq::flash, ((cr_ & kEopie) && (sr_ & kEop)) || ((cr_ & kErrie) && (sr_ & (kPgerr | kWrprterr))));
}

}  // namespace bluepill
