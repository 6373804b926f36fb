// Shared by the host tests: a board's flash parts on one power supply, and naming of
// layout-parameterised tests.
#pragma once

#include <span>
#include <string>

#include "ota/flash_map.hpp"
#include "ota/w25q.hpp"
#include "sim/internal_flash.hpp"
#include "sim/w25q_chip.hpp"

namespace test {

struct Parts {
  explicit Parts(const ota::Layout& l)
      : layout(l), internal(power), chip(power), external(chip, ota::kW25qUsed, 100),
        map{l, internal, &external} {}
  const ota::Layout& layout;
  sim::PowerSupply power;
  sim::InternalFlash internal;
  sim::W25qChip chip;
  ota::W25qFlash external;
  ota::FlashMap map;

  std::span<std::uint8_t> region(const ota::Region& r) {
    if (r.medium == ota::Medium::internal)
      return internal.bytes().subspan(r.base - sim::InternalFlash::kBase, r.size);
    return chip.bytes().subspan(r.base, r.size);
  }
  std::uint64_t violations() const { return internal.violations() + chip.violations(); }
};

struct LayoutName {
  template <class Info>
  std::string operator()(const Info& i) const { return i.param->name; }
};

}  // namespace test
