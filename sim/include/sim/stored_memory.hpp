// What every simulated memory part has: its contents (erased: 0xFF), saved to and restored from a
// raw image file, and the rule violations it saw, so that a test can assert that the code under
// test never broke a rule the silicon would punish.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "sim/violations.hpp"

namespace sim {

class StoredMemory {
 public:
  std::span<std::uint8_t> bytes() { return mem_; }
  std::span<const std::uint8_t> bytes() const { return mem_; }
  // Raw image of the whole part. load() fails (and changes nothing) unless the file has exactly
  // the part's size.
  bool load(const std::filesystem::path& file);
  bool save(const std::filesystem::path& file) const;

  std::uint64_t violations() const { return violations_.count(); }
  const std::string& last_violation() const { return violations_.last(); }
  void clear_violations() { violations_.clear(); }

 protected:
  explicit StoredMemory(std::size_t size) : mem_(size, 0xFF) {}
  ~StoredMemory() = default;
  StoredMemory(const StoredMemory&) = delete;
  StoredMemory& operator=(const StoredMemory&) = delete;

  std::vector<std::uint8_t> mem_;
  Violations violations_;
};

}  // namespace sim
