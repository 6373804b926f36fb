// Compiled by the flash_map_says_what_its_layout_needs test, once per layout (OTA_FIXED_LAYOUT as a
// firmware image is built): the map of the internal layout takes the internal flash alone, the
// map of the external layout takes its W25Q by reference, so that it cannot be left out (the
// client would follow a null pointer at boot).
#include <type_traits>

#include "ota/flash_map.hpp"

namespace {
constexpr bool kInternal = ota::FlashMap::layout.staging.medium == ota::Medium::internal;
}

static_assert(std::is_constructible_v<ota::FlashMap, ota::Flash&> == kInternal);
static_assert(std::is_constructible_v<ota::FlashMap, ota::Flash&, ota::Flash&> == !kInternal);
static_assert(!std::is_constructible_v<ota::FlashMap, ota::Flash&, ota::Flash*>);
static_assert(!std::is_constructible_v<ota::FlashMap, ota::Flash&, std::nullptr_t>);
static_assert(!std::is_convertible_v<ota::Flash&, ota::FlashMap>);  // explicit: no map from a flash by accident
