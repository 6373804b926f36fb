// Compiled by the app_info_version_of_an_enumerator_compiles test: a version in range named by an
// enumerator (a C-style constant) is the whole number it stands for, and compiles.
#include "ota/app_info.hpp"

enum { kMyVersion = 3 };
enum class Release : unsigned { v4 = 4 };
OTA_APP_INFO(kMyVersion, "my-device");
static_assert(ota_app_info.version == 3);
static_assert(ota::app_info_record(ota::LayoutId::internal, Release::v4).version == 4);
