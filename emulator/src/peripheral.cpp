#include "bluepill/peripheral.hpp"

#include <cstdio>

#include "bluepill/chip.hpp"

namespace bluepill {

std::string Peripheral::where(std::uint32_t offset) const {
  char b[80];
  std::snprintf(b, sizeof b, "%s+0x%02X (0x%08X)", name_, static_cast<unsigned>(offset),
                static_cast<unsigned>(base_ + offset));
  return b;
}

std::uint32_t Peripheral::unmodelled_read(std::uint32_t offset) {
  error("read of unmodelled register " + where(offset));
  return 0;
}

void Peripheral::unmodelled_write(std::uint32_t offset, std::uint32_t value) {
  error("write of " + hex32(value) + " to unmodelled register " + where(offset));
}

void Peripheral::error(const std::string& what) { chip_.report(Severity::error, what); }
void Peripheral::warning(const std::string& what) { chip_.report(Severity::warning, what); }

std::uint32_t WordRegisters::read(std::uint32_t offset, unsigned size) {
  const std::uint32_t word = read32(offset & ~3u);
  if (size == 4) return word;
  const unsigned shift = 8 * (offset & 3u);
  return (word >> shift) & (size == 1 ? 0xFFu : 0xFFFFu);
}

void WordRegisters::write(std::uint32_t offset, unsigned size, std::uint32_t value) {
  if (size < narrowest_write()) {
    error(std::to_string(size) + "-byte write of " + hex32(value) + " to " + where(offset) + ": RM0008 allows " +
          (narrowest_write() == 4 ? "word" : "half-word or word") +
          " accesses only (lenient: written as the value repeated in every byte lane, as the APB bridge does)");
    value = size == 1 ? (value & 0xFFu) * 0x01010101u : (value & 0xFFFFu) * 0x00010001u;
    write32(offset & ~3u, value);
    return;
  }
  if (size != 4) value = (value & (size == 1 ? 0xFFu : 0xFFFFu)) << (8 * (offset & 3u));
  write32(offset & ~3u, value);
}

}  // namespace bluepill
