// The power supply shared by all simulated flash parts of one device.
//
// It numbers the flash operations (each program or erase call on any part is one operation,
// counted from 0 since construction or reset_count()) and can cut the power at a planned one:
//   CutMode::before  operation k does not happen; the power is gone.
//   CutMode::torn    operation k happens partially (torn bits from rng()); the power is gone.
// While the power is gone every read/program/erase of every part fails (returns false and
// changes nothing). power_on() revives the device and drops the plan; the count goes on.
#pragma once

#include <cstdint>
#include <optional>
#include <random>

namespace sim {

enum class CutMode : std::uint8_t { before, torn };

// What a part must do with the operation it is about to perform (see begin_op()).
enum class OpFate : std::uint8_t {
  dead,  // power was already gone: fail, change nothing, the op is not counted
  skip,  // power is cut now, before the op: fail, change nothing
  tear,  // power is cut during the op: do part of it, fail
  run,   // do it
};

class PowerSupply {
 public:
  explicit PowerSupply(std::uint64_t seed = 1) : rng_(seed) {}
  PowerSupply(const PowerSupply&) = delete;
  PowerSupply& operator=(const PowerSupply&) = delete;

  // Cut the power at operation `index` (an absolute count, see count()).
  void plan_cut(std::uint64_t index, CutMode mode) { plan_ = Plan{index, mode}; }
  void cancel_cut() { plan_.reset(); }
  // Cut the power now, between operations (the emulator's "pull the plug at time t").
  void cut();
  void power_on();
  bool dead() const { return dead_; }

  std::uint64_t count() const { return count_; }  // operations started so far
  void reset_count() { count_ = 0; }
  // Bumped on every cut: a part compares it with the value it last saw to know that its
  // volatile state (a W25Q's write enable latch, an operation in progress) is lost.
  std::uint64_t epoch() const { return epoch_; }
  std::mt19937_64& rng() { return rng_; }

  // Called by a part at the start of each program/erase operation.
  OpFate begin_op();

 private:
  struct Plan {
    std::uint64_t index;
    CutMode mode;
  };
  std::mt19937_64 rng_;
  std::optional<Plan> plan_;
  std::uint64_t count_ = 0;
  std::uint64_t epoch_ = 0;
  bool dead_ = false;
};

}  // namespace sim
