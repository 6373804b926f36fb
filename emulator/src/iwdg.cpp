#include "bluepill/iwdg.hpp"

#include <algorithm>

#include "bluepill/chip.hpp"

namespace bluepill {

void Iwdg::reset() {
  running_ = unlocked_ = false;
  pr_ = pr_before_ = 0;
  rlr_ = rlr_before_ = 0xFFF;
  pvu_until_ = rvu_until_ = 0;
  chip_.cancel(expiry_);
  if (chip_.config().hardware_watchdog) {  // started by the option byte, as after 0xCCCC
    running_ = true;
    chip_.rcc.force_lsi();
    reload();
  }
}

Cycles Iwdg::lsi_period() const { return kTimeHz / chip_.config().lsi_hz; }

Cycles Iwdg::period_cycles() const {
  const std::uint32_t pr = chip_.now() < pvu_until_ ? pr_before_ : pr_;
  const std::uint32_t rlr = chip_.now() < rvu_until_ ? rlr_before_ : rlr_;
  const std::uint64_t presc = 4u << std::min<std::uint32_t>(pr, 6);
  return static_cast<Cycles>((rlr + 1) * presc * lsi_period());
}

void Iwdg::reload() {
  chip_.cancel(expiry_);
  expiry_ = chip_.at(chip_.now() + period_cycles(), [this](Cycles) {
    expiry_ = 0;
    chip_.report(Severity::info, "IWDG counter reached 0: watchdog reset");
    chip_.request_reset(ResetCause::watchdog);
  });
}

std::uint32_t Iwdg::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: return 0;  // KR is write-only
    case 0x04: return pr_;
    case 0x08: return rlr_;
    case 0x0C: return (chip_.now() < pvu_until_ ? 1u : 0u) | (chip_.now() < rvu_until_ ? 2u : 0u);
    default: return unmodelled_read(off);
  }
}

void Iwdg::write32(std::uint32_t off, std::uint32_t v) {
  const Cycles update_time = 5 * lsi_period();
  switch (off) {
    case 0x00:
      switch (v & 0xFFFF) {
        case 0xCCCC:
          unlocked_ = false;
          if (!running_) {
            running_ = true;
            chip_.rcc.force_lsi();
            reload();
          }
          break;
        case 0xAAAA:
          unlocked_ = false;
          if (running_) reload();
          break;
        case 0x5555: unlocked_ = true; break;
        default: unlocked_ = false; break;
      }
      break;
    case 0x04:
    case 0x08:
      if (!unlocked_) {
        error(std::string("IWDG_") + (off == 4 ? "PR" : "RLR") + " written without KR=0x5555 first (ignored by silicon)");
        break;
      }
      if (chip_.now() < (off == 4 ? pvu_until_ : rvu_until_)) {
        error(std::string("IWDG_") + (off == 4 ? "PR written while SR.PVU" : "RLR written while SR.RVU") +
              " is set: ignored by silicon (RM0008 §19.4.4: the value can be changed only once the "
              "previous update has reached the watchdog; wait for the bit to clear)");
        break;
      }
      if (off == 4) {
        pr_before_ = pr_;
        pr_ = v & 7;
        pvu_until_ = chip_.now() + update_time;
      } else {
        rlr_before_ = rlr_;
        rlr_ = v & 0xFFF;
        rvu_until_ = chip_.now() + update_time;
      }
      break;
    case 0x0C: error("write to read-only IWDG_SR"); break;
    default: unmodelled_write(off, v); break;
  }
}

}  // namespace bluepill
