// Compiled by the app_info_version_negative tests: OTA_APP_INFO(-1) must not compile. Wrapped, it
// would be version 4294967295, the highest there is: no later release would be installed on
// such a device without --force.
#include "ota/app_info.hpp"

#ifdef GOOD_VERSION
OTA_APP_INFO(0, "my-device");
#else
OTA_APP_INFO(-1, "my-device");
#endif
