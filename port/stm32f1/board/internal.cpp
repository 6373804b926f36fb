// Internal layout: application, staging and flags all in the internal flash.
#include "ota/layout.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/internal_flash.hpp"

namespace stm32f1::board {
namespace {

constexpr const ota::Layout& kLayout = ota::kInternalLayout;
InternalFlash internal(kLayout.app.base);  // bootloader pages below app.base are refused
const ota::FlashMap map{internal};
static_assert(&ota::FlashMap::layout == &kLayout, "the core is built for this layout");

}  // namespace

const ota::FlashMap& flash_map(const clock::Tree&, Access access) {
  if (access == Access::update) internal.protect_below(kLayout.staging.base);
  return map;
}

}  // namespace stm32f1::board
