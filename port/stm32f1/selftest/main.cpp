// The port's drivers on their own, for the emulated board: an image (at the application address,
// started by the bootloader) that exercises what neither the bootloader nor the example
// application uses, and prints results that emulator/tests/firmware_test.cpp checks against
// values computed on the host. One line per result, then "selftest done".
#include <cstdint>

#include "stm32f1/clock.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/crc.hpp"
#include "stm32f1/usart1.hpp"

using namespace stm32f1;

namespace {

void print(const char* name, std::uint32_t value) {
  char hex[11] = "=";
  for (int i = 0; i < 8; ++i) hex[1 + i] = "0123456789abcdef"[(value >> (28 - 4 * i)) & 15];
  hex[9] = '\n';
  hex[10] = '\0';
  usart1::write(name);
  usart1::write(hex);
}

}  // namespace

int main() {
  const clock::Tree clocks = clock::init();
  usart1::init(clocks.pclk2, 115200);
  crc::enable();
  // The check value of CRC-32 is that of "123456789" (9 bytes: two words and a tail byte).
  static constexpr std::uint8_t kCheck[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  print("crc32 check", crc::crc32(kCheck, sizeof kCheck));
  print("crc32 words", crc::crc32(kCheck, 8));
  print("crc32 empty", crc::crc32(kCheck, 0));
  static constexpr std::uint32_t kWords[] = {0x12345678, 0x9ABCDEF0};
  print("mpeg2 words", crc::mpeg2(kWords, 2));
  usart1::write("selftest done\n");
  usart1::flush();
  for (;;) cpu::wait_for_interrupt();
}
