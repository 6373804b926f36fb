// Rule violations seen by a simulated part: how many, and the text of the last one, so that a
// test can assert that the code under test never broke a rule the silicon would punish.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace sim {

class Violations {
 public:
  void add(std::string what) {
    ++count_;
    last_ = std::move(what);
  }
  std::uint64_t count() const { return count_; }
  const std::string& last() const { return last_; }
  void clear() {
    count_ = 0;
    last_.clear();
  }

 private:
  std::uint64_t count_ = 0;
  std::string last_;
};

}  // namespace sim
