#include "sim/internal_flash.hpp"

#include <cstring>

#include "util.hpp"

namespace sim {
using detail::hex;

InternalFlash::InternalFlash(PowerSupply& power)
    : ota::Flash(ota::FlashGeometry{kBase, kSize, kPage, 2}), StoredMemory(kSize, kPage), power_(power) {}

std::uint16_t InternalFlash::halfword(std::uint32_t offset) const {
  return static_cast<std::uint16_t>(mem_[offset] | mem_[offset + 1] << 8);  // little-endian
}

void InternalFlash::set_halfword(std::uint32_t offset, std::uint16_t value) {
  mem_[offset] = static_cast<std::uint8_t>(value);
  mem_[offset + 1] = static_cast<std::uint8_t>(value >> 8);
}

InternalFlash::Program InternalFlash::check_program(std::uint32_t addr, std::uint16_t value) {
  if (addr % 2 != 0 || !contains(addr, 2)) {
    violations_.add("program at " + hex(addr) + ": not a half-word of the flash");
    return Program::misaligned;
  }
  const std::uint16_t old = halfword(addr - kBase);
  if (old != 0xFFFF && value != 0x0000) {
    violations_.add("PGERR at " + hex(addr) + ": reads " + hex(old) + ", not erased");
    return Program::pgerr;
  }
  return Program::ok;
}

InternalFlash::Program InternalFlash::program_halfword(std::uint32_t addr, std::uint16_t value) {
  const Program r = check_program(addr, value);
  if (r == Program::ok) set_halfword(addr - kBase, value);
  return r;
}

void InternalFlash::tear_program(std::uint32_t addr, std::uint16_t value, std::mt19937_64& rng) {
  if (check_program(addr, value) != Program::ok) return;
  const std::uint16_t old = halfword(addr - kBase);
  const auto clear = static_cast<std::uint16_t>(old & ~value);  // bits that should go 1 -> 0
  const auto done = static_cast<std::uint16_t>(clear & tear_mask(rng));
  set_halfword(addr - kBase, static_cast<std::uint16_t>(old & ~done));
}

bool InternalFlash::erase_page(std::uint32_t addr) {
  if (addr % kPage != 0 || !contains(addr, kPage)) {
    violations_.add("erase at " + hex(addr) + ": not the first address of a page");
    return false;
  }
  std::memset(&mem_[addr - kBase], 0xFF, kPage);
  count_erase(addr - kBase);
  return true;
}

void InternalFlash::tear_erase(std::uint32_t addr, std::mt19937_64& rng) {
  if (addr % kPage != 0 || !contains(addr, kPage)) {
    violations_.add("erase at " + hex(addr) + ": not the first address of a page");
    return;
  }
  for (std::uint32_t i = 0; i < kPage; ++i) mem_[addr - kBase + i] |= static_cast<std::uint8_t>(tear_mask(rng));
  count_erase(addr - kBase);
}

std::uint16_t InternalFlash::tear_mask(std::mt19937_64& rng) const {
  if (tear_one_in_ <= 1) return 0xFFFF;
  if (tear_one_in_ == 2) return static_cast<std::uint16_t>(rng());
  std::uint16_t m = 0;
  for (int b = 0; b < 16; ++b)
    if (rng() % tear_one_in_ == 0) m = static_cast<std::uint16_t>(m | 1u << b);
  return m;
}

bool InternalFlash::read(std::uint32_t addr, void* dst, std::size_t len) {
  if (power_.dead()) return false;
  if (!contains(addr, len)) {
    violations_.add("read at " + hex(addr) + ": outside the flash");
    return false;
  }
  if (len != 0) std::memcpy(dst, &mem_[addr - kBase], len);
  return true;
}

// One operation however long: the STM32 programs half-word after half-word, so a cut leaves a
// prefix programmed, one half-word torn and the rest untouched.
bool InternalFlash::write(std::uint32_t addr, const void* src, std::size_t len) {
  const OpFate fate = power_.begin_op();
  if (fate == OpFate::dead || fate == OpFate::skip) return false;
  if (addr % 2 != 0 || len > kSize || !contains(addr, (len + 1) & ~std::size_t{1})) {  // (len + 1 cannot wrap)
    violations_.add("write at " + hex(addr) + " len " + std::to_string(len) +
                    ": not half-words of the flash");
    return false;
  }
  // An odd last byte is programmed as a half-word padded with 0xFF (the ota::Flash contract).
  const auto* p = static_cast<const std::uint8_t*>(src);
  auto halfword_at = [&](std::size_t i) {
    const std::uint8_t hi = 2 * i + 1 < len ? p[2 * i + 1] : 0xFF;
    return static_cast<std::uint16_t>(p[2 * i] | hi << 8);
  };
  const std::size_t n = (len + 1) / 2;
  std::size_t whole = n;
  if (fate == OpFate::tear) {
    if (n == 0) return false;
    whole = std::uniform_int_distribution<std::size_t>(0, n - 1)(power_.rng());
  }
  for (std::size_t i = 0; i < whole; ++i)
    if (program_halfword(addr + static_cast<std::uint32_t>(2 * i), halfword_at(i)) != Program::ok) return false;
  if (fate == OpFate::run) return true;
  const std::uint16_t value = halfword_at(whole);
  tear_program(addr + static_cast<std::uint32_t>(2 * whole), value, power_.rng());
  return false;
}

bool InternalFlash::erase(std::uint32_t addr) {
  const OpFate fate = power_.begin_op();
  if (fate == OpFate::dead || fate == OpFate::skip) return false;
  if (fate == OpFate::run) return erase_page(addr);
  tear_erase(addr, power_.rng());
  return false;
}

}  // namespace sim
