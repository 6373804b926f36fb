#include "bluepill/pwr.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {
namespace {
constexpr std::uint32_t kLowPower = 0xFu;  // LPDS, PDDS, CWUF, CSBF
constexpr std::uint32_t kPvde = 1u << 4, kPlsMask = 7u << 5, kDbp = 1u << 8;
constexpr std::uint32_t kPvdo = 1u << 2;
}  // namespace

void Pwr::reset() {
  cr_ = 0;
  below_ = false;
}

bool Pwr::clocked() const { return chip_.rcc.apb1_enabled(28); }
bool Pwr::held_in_reset() const { return chip_.rcc.apb1_in_reset(28); }

bool Pwr::pvd_output() {
  if (!(cr_ & kPvde)) return below_ = false;
  const double level = 0.1 * static_cast<double>((cr_ & kPlsMask) >> 5) + chip_.config().pvd_offset_volts;
  const double vdd = chip_.board().supply_volts;
  below_ = below_ ? vdd < 2.18 + level : vdd < 2.08 + level;
  return below_;
}

std::uint32_t Pwr::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: return cr_;
    case 0x04: return pvd_output() ? kPvdo : 0;
    default: return unmodelled_read(off);
  }
}

void Pwr::write32(std::uint32_t off, std::uint32_t v) {
  switch (off) {
    case 0x00:
      if (v & kLowPower) error("PWR_CR low-power bits (LPDS, PDDS, CWUF, CSBF) are not modelled");
      cr_ = v & (kPvde | kPlsMask | kDbp);
      pvd_output();
      break;
    case 0x04:
      if (v != 0) error("PWR_CSR.EWUP (the wake-up pin) is not modelled");
      break;
    default: unmodelled_write(off, v); break;
  }
}

}  // namespace bluepill
