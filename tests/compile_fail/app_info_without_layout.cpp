// Compiled by the app_info_needs_a_layout test: an image that declares its version without
// being linked against a board library (no OTA_FIXED_LAYOUT) must fail with a message saying so.
#include "ota/app_info.hpp"

OTA_APP_INFO(3);
