// What every simulated memory part has: its contents (erased: 0xFF), saved to and restored from a
// raw image file; the rule violations it saw, so that a test can assert that the code under test
// never broke a rule the silicon would punish; and how often each erase unit was erased (wear:
// 10,000 cycles for the STM32F103's flash, 100,000 for a W25Q).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
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
  // Written whole beside the file (`file` + ".part") and renamed over it. `before_rename`, if
  // given, is called with that part file once it is written and before it takes the name (to
  // lock it: whoever opens the name then finds a locked file, the old one or the new one).
  // A save that fails (the disk is full) leaves the old file as it was, and no part file.
  using BeforeRename = std::function<void(const std::filesystem::path& part)>;
  bool save(const std::filesystem::path& file, const BeforeRename& before_rename = {}) const;

  std::uint64_t violations() const { return violations_.count(); }
  const std::string& last_violation() const { return violations_.last(); }
  void clear_violations() { violations_.clear(); }

  // Erases (whole or torn) of the erase unit holding `offset` (from the part's first byte).
  std::uint32_t erases(std::uint32_t offset) const { return erases_.at(offset / unit_); }

 protected:
  StoredMemory(std::size_t size, std::uint32_t erase_unit)
      : mem_(size, 0xFF), unit_(erase_unit), erases_(size / erase_unit, 0) {}
  void count_erase(std::uint32_t offset) { ++erases_.at(offset / unit_); }
  ~StoredMemory() = default;
  StoredMemory(const StoredMemory&) = delete;
  StoredMemory& operator=(const StoredMemory&) = delete;

  std::vector<std::uint8_t> mem_;
  Violations violations_;

 private:
  std::uint32_t unit_;
  std::vector<std::uint32_t> erases_;
};

}  // namespace sim
