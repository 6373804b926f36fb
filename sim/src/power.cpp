#include "sim/power.hpp"

namespace sim {

void PowerSupply::cut() {
  if (dead_) return;
  dead_ = true;
  ++epoch_;
}

void PowerSupply::power_on() {
  dead_ = false;
  plan_.reset();
}

OpFate PowerSupply::begin_op() {
  if (dead_) return OpFate::dead;
  const std::uint64_t index = count_++;
  if (!plan_ || plan_->index != index) return OpFate::run;
  const CutMode mode = plan_->mode;
  plan_.reset();
  cut();
  return mode == CutMode::before ? OpFate::skip : OpFate::tear;
}

}  // namespace sim
