// Firmware image files: ELF (PT_LOAD segments at their load addresses), Intel HEX, raw binary
// (at a given base address, 0x08000000 by default). Errors throw std::runtime_error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace bluepill {

struct Segment {
  std::uint32_t addr;
  std::vector<std::uint8_t> data;
};

std::vector<Segment> read_image(const std::filesystem::path& file, std::uint32_t bin_base = 0x08000000);
std::vector<Segment> read_elf(const std::vector<std::uint8_t>& bytes);
std::vector<Segment> read_hex(const std::string& text);

}  // namespace bluepill
