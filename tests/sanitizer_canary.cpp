// Built by `make test-sanitize` only, to show that its build is instrumented: the test
// sanitizers_are_on expects AddressSanitizer's report of the overflow below, which only an
// instrumented build gives (an uninstrumented one writes a byte past the block unnoticed).
#include <cstddef>
#include <cstdlib>
#include <cstring>

int main(int argc, char**) {
  auto* p = static_cast<char*>(std::malloc(8));
  std::memset(p, 0, 8 + static_cast<std::size_t>(argc));  // argc is 1: one byte past the end
  const int r = p[0];
  std::free(p);
  return r;
}
