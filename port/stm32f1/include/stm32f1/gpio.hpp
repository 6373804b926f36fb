// GPIO ports A-C (RM0008 §9). A pin is configured by one 4-bit CNF:MODE field in CRL/CRH.
#pragma once

#include <cstdint>

namespace stm32f1::gpio {

enum class Port : std::uint8_t { A = 0, B = 1, C = 2 };

// CNF[1:0]:MODE[1:0] of RM0008 §9.2.1; the pull-up/down choice is made through ODR.
enum class Mode : std::uint8_t {
  analog = 0x0,
  input_floating = 0x4,
  input_pull_up = 0x18,    // CNF 10 with ODR = 1 (bits 4-5 are not part of the field)
  input_pull_down = 0x28,  // CNF 10 with ODR = 0
  output_2mhz = 0x2,      // push-pull
  output_50mhz = 0x3,     // push-pull
  alternate_50mhz = 0xB,  // alternate function push-pull
};

struct Pin {
  Port port;
  std::uint8_t n;
};

void configure(Pin p, Mode m);  // also enables the port clock
// An output (m: output_2mhz, output_50mhz) that starts at `high`: the level is written first,
// then the mode, so the pin never drives the other level, not even for an instant (an LED that
// should start off does not flash). Also enables the port clock, which the level needs.
void configure_output(Pin p, Mode m, bool high);
void write(Pin p, bool high);
bool read(Pin p);
void toggle(Pin p);

}  // namespace stm32f1::gpio
