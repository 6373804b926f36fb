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

// Written beside the file and renamed over it: a process killed while it saves leaves the old
// contents, never a truncated file (which would load as a factory-fresh part).
bool StoredMemory::save(const std::filesystem::path& file, const BeforeRename& before_rename) const {
  std::filesystem::path part = file;
  part += ".part";
  {
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(mem_.data()), static_cast<std::streamsize>(mem_.size()));
    if (!out.flush()) {  // a full disk, say: the old file stays, and no half copy beside it
      out.close();
      std::error_code ignored;
      std::filesystem::remove(part, ignored);
      return false;
    }
  }
  if (before_rename) before_rename(part);
  std::error_code ec;
  std::filesystem::rename(part, file, ec);
  if (ec) std::filesystem::remove(part, ec);
  return !ec;
}

}  // namespace sim
