#include "sim/w25q_chip.hpp"

#include <cstring>
#include <utility>

#include "util.hpp"

namespace sim {
using detail::hex;

namespace {
constexpr std::uint8_t kWriteEnable = 0x06;
constexpr std::uint8_t kWriteDisable = 0x04;
constexpr std::uint8_t kPageProgram = 0x02;
constexpr std::uint8_t kSectorErase = 0x20;
constexpr std::uint8_t kReadData = 0x03;
constexpr std::uint8_t kReadStatus1 = 0x05;
constexpr std::uint8_t kJedecId = 0x9F;
constexpr std::uint8_t kReleasePowerDown = 0xAB;
constexpr std::uint8_t kPowerDown = 0xB9;
constexpr std::uint8_t kReadStatus2 = 0x35;
constexpr std::uint8_t kSuspend = 0x75;
constexpr std::uint8_t kResume = 0x7A;
constexpr std::uint64_t kSuspendNs = 20'000;  // tSUS
constexpr std::uint8_t kSus = 0x80;           // SR2 bit 7
constexpr std::uint64_t kReleaseNs = 3'000;  // tRES1
constexpr std::uint8_t kBusy = 0x01;
constexpr std::uint8_t kWel = 0x02;
constexpr std::uint8_t kHighZ = 0xFF;  // what the MCU reads when the chip does not drive DO
}  // namespace

W25qChip::W25qChip(PowerSupply& power, W25qPart part)
    : StoredMemory(part.capacity, kSectorSize), power_(power), part_(part), seen_epoch_(power.epoch()) {}

void W25qChip::set_timing(Clock now, W25qTiming timing) {
  sync();
  now_ = std::move(now);
  timing_ = timing;
}

bool W25qChip::in_progress() { return running_ && now_ && now_() < done_at_; }

void W25qChip::lose_volatile() {
  wel_ = selected_ = ignored_ = running_ = powered_down_ = releasing_ = suspended_ = false;
  suspending_until_ = 0;
  count_ = 0;
}

// The power may have been cut through the supply (another part's planned cut, the emulator).
// An operation still running at the moment this part notices is torn.
void W25qChip::sync() {
  if (power_.epoch() != seen_epoch_) {
    seen_epoch_ = power_.epoch();
    tear_all();
    lose_volatile();
    return;
  }
  if (running_ && !in_progress()) {
    running_ = false;
    wel_ = false;  // WEL clears when the program/erase completes
  }
}

std::uint8_t W25qChip::status() {
  sync();
  if (power_.dead()) return kHighZ;
  const bool suspending = now_ && now_() < suspending_until_;
  return static_cast<std::uint8_t>((in_progress() || suspending ? kBusy : 0) | (wel_ ? kWel : 0));
}

void W25qChip::power_cut() {
  sync();
  tear_all();
  power_.cut();
  seen_epoch_ = power_.epoch();
  lose_volatile();
}

void W25qChip::power_up(std::uint64_t inhibit_ns) {
  sync();
  write_inhibit_until_ = now_ ? now_() + inhibit_ns : 0;
}

void W25qChip::select(bool asserted) {
  sync();
  if (power_.dead()) return;
  if (asserted) {
    selected_ = true;
    ignored_ = false;
    if (releasing_ && now_ && now_() < released_at_ + kReleaseNs) {
      ignored_ = true;
      violations_.add("/CS fell within tRES1 (3 us) of the release from power-down (0xAB): command ignored");
    }
    releasing_ = false;
    count_ = 0;
    op_ = 0;
    addr_ = 0;
    page_.fill(0xFF);
  } else if (selected_) {
    selected_ = false;
    if (count_ != 0 && !ignored_) finish();
  }
}

void W25qChip::transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) {
  sync();
  if (!power_.dead() && !selected_ && tx != nullptr && len != 0) violations_.add("transfer with /CS high");
  for (std::size_t i = 0; i < len; ++i) {
    const std::uint8_t in = tx != nullptr ? tx[i] : 0xFF;
    const std::uint8_t out = !power_.dead() && selected_ ? shift(in) : kHighZ;
    if (rx != nullptr) rx[i] = out;
  }
}

std::uint8_t W25qChip::shift(std::uint8_t in) {
  const std::uint32_t i = count_++;
  if (i == 0) {
    op_ = in;
    if (ignored_) return kHighZ;  // within tRES1
    if (powered_down_ && op_ != kReleasePowerDown) {
      ignored_ = true;
      violations_.add("command " + hex(op_, 2) + " in power-down (only 0xAB is recognised)");
    } else if (busy() && op_ != kReadStatus1 && op_ != kReadStatus2 && !(op_ == kSuspend && in_progress())) {
      // (The status registers may be read at any time, W25Q16JV datasheet 8.2.4.)
      ignored_ = true;
      if (op_ != kReleasePowerDown && op_ != kResume)  // documented as ignored while BUSY: not a misuse
        violations_.add("command " + hex(op_, 2) + " while BUSY (only status reads and 0x75 are accepted)");
    }
    return kHighZ;
  }
  if (ignored_) return kHighZ;
  const bool address = i <= 3;  // bytes 1..3 of an addressed command: A23..A0, MSB first
  if (address) addr_ = (addr_ << 8 | in) & 0xFFFFFF;
  switch (op_) {
    case kReadStatus1:
      return status();
    case kReadStatus2:
      return suspended_ ? kSus : 0;
    case kJedecId:
      return i <= 3 ? static_cast<std::uint8_t>(part_.jedec_id >> (8 * (3 - i))) : kHighZ;
    case kReleasePowerDown:
      if (powered_down_) return kHighZ;  // released on /CS rising; the id comes after tRES2
      return i >= 4 ? static_cast<std::uint8_t>((part_.jedec_id & 0xFF) - 1) : kHighZ;
    case kReadData:
      if (address) return kHighZ;
      {
        const std::uint8_t b = mem_[addr_ & (part_.capacity - 1)];
        addr_ = (addr_ + 1) & (part_.capacity - 1);  // continues across the chip, wraps to 0
        return b;
      }
    case kPageProgram:
      if (!address) page_[(addr_ + (i - 4)) % kPageSize] = in;  // wraps inside the page
      return kHighZ;
    default:
      return kHighZ;
  }
}

void W25qChip::finish() {
  const auto cut_short = [&](const char* what) {
    violations_.add(std::string("/CS rose in the middle of ") + what + " (" +
                    std::to_string(count_) + " bytes); not executed");
  };
  switch (op_) {
    case kWriteEnable:
    case kWriteDisable:
      if (count_ != 1) return cut_short(op_ == kWriteEnable ? "0x06" : "0x04");
      if (op_ == kWriteEnable && now_ && now_() < write_inhibit_until_) {
        ++wren_ignored_;  // tPUW after power-up
        return;
      }
      wel_ = op_ == kWriteEnable;
      return;
    case kPowerDown:
      if (count_ != 1) return cut_short("0xB9");
      powered_down_ = true;
      return;
    case kReleasePowerDown:
      if (powered_down_) {
        powered_down_ = false;
        releasing_ = true;
        released_at_ = now_ ? now_() : 0;
      }
      return;
    case kReadStatus1:
    case kReadStatus2:
    case kJedecId:
      return;
    case kSuspend:
      if (count_ != 1) return cut_short("0x75");
      if (!in_progress() || suspended_) return;  // nothing to suspend: ignored
      suspended_ = true;
      suspended_erase_ = op_len_ == kSectorSize;
      suspend_left_ns_ = done_at_ - now_();
      running_ = false;
      swap_suspended();  // kept aside: a 0x02 may run while it is suspended
      suspending_until_ = now_() + kSuspendNs;
      return;
    case kResume:
      if (count_ != 1) return cut_short("0x7A");
      if (!suspended_ || busy()) return;  // accepted only with SUS = 1 and BUSY = 0
      suspended_ = false;
      swap_suspended();  // BUSY = 0: whatever ran meanwhile is complete
      running_ = true;
      done_at_ = now_ ? now_() + suspend_left_ns_ : 0;
      return;
    case kReadData:
      if (count_ < 4) cut_short("0x03");
      return;
    case kPageProgram: {
      if (count_ < 5) return cut_short("0x02");
      if (!wel_) return violations_.add("0x02 page program without WEL: ignored");
      const std::uint32_t page = addr_ & (part_.capacity - 1) & ~(kPageSize - 1);
      if (suspended_ && (!suspended_erase_ || page - susp_addr_ < susp_len_))
        return violations_.add("0x02 at " + hex(addr_, 6) + " during a suspended " +
                               (suspended_erase_ ? "erase of its sector" : "page program") + " (SUS = 1): ignored");
      if (page >= protect_from_ && page < protect_to_) return;  // protected: not executed
      if ((addr_ % kPageSize) + (count_ - 4) > kPageSize)
        violations_.add("0x02 at " + hex(addr_, 6) + " with " + std::to_string(count_ - 4) +
                        " bytes wraps inside its page");
      for (std::uint32_t k = 0; k < kPageSize; ++k) {
        if (page_[k] != 0xFF && page_[k] != 0x00 && mem_[page + k] != 0xFF) {
          violations_.add("0x02 programs " + hex(page + k, 6) + " which reads " +
                          hex(mem_[page + k], 2) + " (ota::Flash contract: erased or 0x00)");
          break;
        }
      }
      std::memcpy(before_.data(), &mem_[page], kPageSize);
      for (std::uint32_t k = 0; k < kPageSize; ++k) page_[k] &= before_[k];  // only 1 -> 0
      return execute(page, kPageSize, page_.data(), timing_.page_program_ns);
    }
    case kSectorErase: {
      if (count_ != 4) return cut_short("0x20");
      if (!wel_) return violations_.add("0x20 sector erase without WEL: ignored");
      if (suspended_) return violations_.add("0x20 sector erase during an erase/program suspend (SUS = 1): ignored");
      const std::uint32_t sector = addr_ & (part_.capacity - 1) & ~(kSectorSize - 1);
      if (sector >= protect_from_ && sector < protect_to_) return;  // protected: not executed
      std::memcpy(before_.data(), &mem_[sector], kSectorSize);
      return execute(sector, kSectorSize, nullptr, timing_.sector_erase_ns);
    }
    default:
      violations_.add("unsupported command " + hex(op_, 2) + ": ignored");
  }
}

// Runs a program (target = the new contents) or an erase (target = null: all 0xFF) on
// [addr, addr+len), whose current contents are in before_. One power-supply operation.
void W25qChip::execute(std::uint32_t addr, std::uint32_t len, const std::uint8_t* target,
                       std::uint64_t duration_ns) {
  const OpFate fate = power_.begin_op();
  if (fate == OpFate::dead || fate == OpFate::skip) {
    seen_epoch_ = power_.epoch();
    return lose_volatile();
  }
  op_addr_ = addr;
  op_len_ = len;
  if (target == nullptr) count_erase(addr);
  for (std::uint32_t k = 0; k < len; ++k) mem_[addr + k] = target != nullptr ? target[k] : 0xFF;
  if (fate == OpFate::tear) {
    tear();
    seen_epoch_ = power_.epoch();
    return lose_volatile();
  }
  running_ = true;
  done_at_ = now_ ? now_() + duration_ns : 0;
  sync();  // instant mode: completes (and clears WEL) here
}

void W25qChip::tear_all() {
  if (in_progress()) tear();
  if (suspended_) {
    swap_suspended();
    tear();
    swap_suspended();
  }
}

void W25qChip::swap_suspended() {
  std::swap(op_addr_, susp_addr_);
  std::swap(op_len_, susp_len_);
  std::swap(before_, susp_before_);
}

// mem_ holds the operation's result: each bit where it differs from before_ randomly keeps its
// old value or takes the new one (a program's 1 -> 0 bits, an erase's 0 -> 1 bits).
void W25qChip::tear() {
  std::mt19937_64& rng = power_.rng();
  for (std::uint32_t k = 0; k < op_len_; ++k) {
    const auto diff = static_cast<std::uint8_t>(before_[k] ^ mem_[op_addr_ + k]);
    mem_[op_addr_ + k] = static_cast<std::uint8_t>(before_[k] ^ (diff & rng()));
  }
  running_ = false;
}

}  // namespace sim
