// Compiled by the app_info_version_fractional tests: a version written as a release number with a
// dot (MY_APP_VERSION=1.2 in the CMake DEFINITIONS) must not compile. Truncated to 1, 1.2, 1.3, ...
// would all say version 1, and `ota push` would find the device "up to date" and install nothing.
#include "ota/app_info.hpp"

#ifdef GOOD_VERSION
OTA_APP_INFO(12, "my-device");
#else
OTA_APP_INFO(1.2, "my-device");
#endif
