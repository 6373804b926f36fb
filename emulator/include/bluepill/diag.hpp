// What the board reports about the firmware it runs.
//
// error:   the firmware broke a rule of the silicon or touched something the board does not model
//          (an unmodelled register, a flash write outside the FLASH controller's rules, a fault).
//          Nothing is silently ignored: with Config::strict (the default) the board also stops.
// warning: legal but suspicious (a received byte lost to an overrun, a byte sent into a full
//          transmit register...); never stops the board.
// info:    events worth a line in a log (reset causes, power cuts).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bluepill {

enum class Severity : std::uint8_t { info, warning, error };

struct Diagnostic {
  Severity severity;
  std::uint64_t time_ns;  // virtual time
  std::uint32_t pc;
  std::string text;
  std::string to_string() const;
};

class Diagnostics {
 public:
  void add(Severity s, std::uint64_t time_ns, std::uint32_t pc, std::string text);
  const std::vector<Diagnostic>& all() const { return list_; }
  std::size_t errors() const { return errors_; }
  std::size_t warnings() const { return warnings_; }
  // Text of every error (one per line), empty if none: handy in test assertions.
  std::string error_text() const;
  void clear();
  // Called for each new diagnostic (the command-line program prints them as they happen).
  std::function<void(const Diagnostic&)> on_add;

 private:
  std::vector<Diagnostic> list_;
  std::size_t errors_ = 0;
  std::size_t warnings_ = 0;
};

std::string hex32(std::uint32_t v);

}  // namespace bluepill
