// Child processes for end-to-end tests: start a program, read its stdout and stderr line by line with a
// deadline, wait for its exit code. POSIX only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace test {

class Process {
 public:
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The next line of stdout (without '\n'), or nullopt at EOF or when the deadline passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`; returns it.
  std::optional<std::string> wait_for(const std::string& prefix, std::chrono::milliseconds timeout);
  // Everything read so far.
  const std::string& output() const { return seen_; }
  // Exit code, or -1 after the timeout (the process is then killed).
  int wait(std::chrono::milliseconds timeout);
  void kill();
  // Closes the read end of the child's stdout and stderr, as `| head` does once it has its lines.
  void close_output();
  void signal(int sig);  // e.g. SIGINT, as Ctrl-C in a terminal would

 private:
  int pid_ = -1;
  int out_ = -1;
  std::string buf_;
  std::string seen_;
  bool exited_ = false;
  int code_ = -1;
};

// How many times `what` occurs in a child's output.
inline std::size_t count_in(const std::string& output, const std::string& what) {
  std::size_t n = 0;
  for (auto at = output.find(what); at != std::string::npos; at = output.find(what, at + 1)) ++n;
  return n;
}

}  // namespace test
