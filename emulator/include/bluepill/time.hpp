// Virtual time of the emulated board.
//
// The unit is one cycle of a 72 MHz clock, whatever the core's clock really is: an instruction
// costs 72 MHz / SYSCLK of these units (1 at 72 MHz, 9 at the 8 MHz of the reset clock).
// Peripherals that need to act later (a UART frame ending, a flash operation completing, SysTick
// wrapping) put an event in the Scheduler; the board runs due events between instructions.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace bluepill {

using Cycles = std::uint64_t;
inline constexpr Cycles kTimeHz = 72'000'000;
inline constexpr Cycles kNever = std::numeric_limits<Cycles>::max();

constexpr Cycles us_to_cycles(double us) { return static_cast<Cycles>(us * (kTimeHz / 1'000'000) + 0.5); }
constexpr Cycles ns_to_cycles(std::uint64_t ns) { return (ns * 9 + 124) / 125; }  // 72 / 1000 = 9 / 125
constexpr std::uint64_t cycles_to_ns(Cycles c) { return c * 125 / 9; }
constexpr double cycles_to_us(Cycles c) { return static_cast<double>(c) / (kTimeHz / 1'000'000); }

class Scheduler {
 public:
  using Id = std::uint64_t;
  using Action = std::function<void(Cycles when)>;  // `when` is the scheduled time (<= now)

  Cycles now = 0;  // advanced by the CPU (one step per instruction) and by the board when idle
  // If set, lowered to the time of any event scheduled earlier than it: the CPU's run loop
  // points it at its stop time so that an event scheduled by a register access stops it.
  Cycles* floor = nullptr;

  // Runs `fn` once virtual time reaches `when`. Returns an id for cancel(); never 0.
  // `owner` tags the event so that clear_owner() can drop all of one owner's events at once.
  Id at(Cycles when, Action fn, const void* owner = nullptr);
  Id after(Cycles delay, Action fn, const void* owner = nullptr) { return at(now + delay, std::move(fn), owner); }
  // Cancels a pending event and sets id to 0 (no-op for 0 or an event that already ran).
  void cancel(Id& id);
  bool pending(Id id) const;
  Cycles next() const { return next_; }  // earliest pending event, kNever if none
  // Runs every event due at `now`, in time order (events scheduled while running included).
  // Returns how many ran.
  int run_due();
  void clear();
  void clear_owner(const void* owner);

 private:
  struct Event {
    Cycles when;
    Id id;
    Action fn;
    const void* owner;
  };
  void recompute();
  std::vector<Event> events_;
  Id last_id_ = 0;
  Cycles next_ = kNever;
};

}  // namespace bluepill
