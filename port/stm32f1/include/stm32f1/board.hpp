// The flash devices of a Blue Pill for the layout this image is built for: the internal flash
// (the driver refuses to erase or write the bootloader pages) and, for the external layout, a
// W25Q on SPI1. One implementation per layout (board/internal.cpp, board/external.cpp), linked
// as ota_board_internal / ota_board_external.
#pragma once

#include "ota/flash_map.hpp"
#include "stm32f1/clock.hpp"

// Every file of an image that sees the flash map must see the same one: the board library of the
// layout brings OTA_FIXED_LAYOUT (core/CMakeLists.txt); a file compiled without it would build
// the run-time FlashMap into the image beside the compile-time one.
#ifndef OTA_FIXED_LAYOUT
#error "stm32f1/board.hpp: link the file's target with ota_board_<layout> (it defines OTA_FIXED_LAYOUT)"
#endif

namespace stm32f1::board {

// Who uses the map: the bootloader installs (writes the application area); an application only
// updates (writes staging and flags, never the internal flash below them, so not even a bug in
// it can erase the code that is running).
enum class Access : unsigned char { install, update };

// Starts the buses the flash devices need; the map lives as long as the program. (Before a jump
// to another image, cpu::jump_to_image resets them.)
const ota::FlashMap& flash_map(const clock::Tree& clocks, Access access);

}  // namespace stm32f1::board
