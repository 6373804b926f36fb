#include "bluepill/time.hpp"

#include <algorithm>

namespace bluepill {

Scheduler::Id Scheduler::at(Cycles when, Action fn, const void* owner) {
  events_.push_back(Event{when, ++last_id_, std::move(fn), owner});
  next_ = std::min(next_, when);
  if (floor != nullptr && when < *floor) *floor = when;
  return last_id_;
}

void Scheduler::cancel(Id& id) {
  if (id == 0) return;
  const auto it = std::find_if(events_.begin(), events_.end(), [&](const Event& e) { return e.id == id; });
  if (it != events_.end()) {
    events_.erase(it);
    recompute();
  }
  id = 0;
}

bool Scheduler::pending(Id id) const {
  return id != 0 && std::any_of(events_.begin(), events_.end(), [&](const Event& e) { return e.id == id; });
}

void Scheduler::recompute() {
  next_ = kNever;
  for (const Event& e : events_) next_ = std::min(next_, e.when);
}

int Scheduler::run_due() {
  int ran = 0;
  while (next_ <= now) {
    // earliest first; among equal times, the one scheduled first
    auto it = std::min_element(events_.begin(), events_.end(), [](const Event& a, const Event& b) {
      return a.when != b.when ? a.when < b.when : a.id < b.id;
    });
    Event e = std::move(*it);
    events_.erase(it);
    recompute();
    e.fn(e.when);
    ++ran;
  }
  return ran;
}

void Scheduler::clear_owner(const void* owner) {
  std::erase_if(events_, [&](const Event& e) { return e.owner == owner; });
  recompute();
}

void Scheduler::clear() {
  events_.clear();
  next_ = kNever;
}

}  // namespace bluepill
