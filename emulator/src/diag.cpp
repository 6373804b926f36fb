#include "bluepill/diag.hpp"

#include <cstdio>

namespace bluepill {

std::string hex32(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08X", static_cast<unsigned>(v));
  return b;
}

std::string Diagnostic::to_string() const {
  static const char* const names[] = {"info", "warning", "error"};
  char head[96];
  std::snprintf(head, sizeof head, "[%12.3f us] pc=%08X %s: ", static_cast<double>(time_ns) / 1000.0,
                static_cast<unsigned>(pc), names[static_cast<int>(severity)]);
  return head + text;
}

void Diagnostics::add(Severity s, std::uint64_t time_ns, std::uint32_t pc, std::string text) {
  if (s == Severity::error) ++errors_;
  if (s == Severity::warning) ++warnings_;
  list_.push_back(Diagnostic{s, time_ns, pc, std::move(text)});
  if (list_.size() > 100000) list_.erase(list_.begin(), list_.begin() + 50000);  // bounded log
  if (on_add) on_add(list_.back());
}

std::string Diagnostics::error_text() const {
  std::string out;
  for (const Diagnostic& d : list_)
    if (d.severity == Severity::error) out += d.to_string() + "\n";
  return out;
}

void Diagnostics::clear() {
  list_.clear();
  errors_ = warnings_ = 0;
}

}  // namespace bluepill
