// Small helpers shared by the simulated parts (private to ota_sim).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

namespace sim::detail {

inline std::string hex(std::uint32_t v, int digits = 8) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*X", digits, static_cast<unsigned>(v));
  return buf;
}

// Raw image files: load() accepts only a file of exactly mem.size() bytes and otherwise changes
// nothing.
inline bool load_image(const std::filesystem::path& file, std::span<std::uint8_t> mem) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() != mem.size()) return false;
  for (std::size_t i = 0; i < data.size(); ++i) mem[i] = static_cast<std::uint8_t>(data[i]);
  return true;
}

inline bool save_image(const std::filesystem::path& file, std::span<const std::uint8_t> mem) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(mem.data()), static_cast<std::streamsize>(mem.size()));
  return static_cast<bool>(out.flush());
}

}  // namespace sim::detail
