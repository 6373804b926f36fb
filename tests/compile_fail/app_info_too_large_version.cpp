// Compiled by the app_info_version_too_large tests: a version above 32 bits (a date and time
// as one number, say) must not compile. Truncated, 20261127093000 would be some other number.
#include "ota/app_info.hpp"

#ifdef GOOD_VERSION
OTA_APP_INFO(4294967295u, "my-device");
#else
OTA_APP_INFO(20261127093000, "my-device");
#endif
