#include "sim/stored_memory.hpp"

#include <fstream>
#include <iterator>

namespace sim {

bool StoredMemory::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() != mem_.size()) return false;
  for (std::size_t i = 0; i < data.size(); ++i) mem_[i] = static_cast<std::uint8_t>(data[i]);
  return true;
}

bool StoredMemory::save(const std::filesystem::path& file) const {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(mem_.data()), static_cast<std::streamsize>(mem_.size()));
  return static_cast<bool>(out.flush());
}

}  // namespace sim
