# Toolchain file for the STM32F103 firmware tree (Debian's gcc-arm-none-eabi).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy CACHE FILEPATH "")
set(CMAKE_SIZE arm-none-eabi-size CACHE FILEPATH "")
# Compiler checks would try to link a hosted program; a static library is enough.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(OTA_CPU_FLAGS "-mcpu=cortex-m3 -mthumb")
set(CMAKE_C_FLAGS_INIT "${OTA_CPU_FLAGS} -ffunction-sections -fdata-sections")
# -fno-tree-switch-conversion: switches stay compare-and-branch code instead of becoming lookup
# tables in flash; 40 B smaller bootloaders, the applications unchanged (docs/benchmarks.md).
set(CMAKE_CXX_FLAGS_INIT "${OTA_CPU_FLAGS} -ffunction-sections -fdata-sections -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit -fno-tree-switch-conversion")
set(CMAKE_ASM_FLAGS_INIT "${OTA_CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${OTA_CPU_FLAGS} -nostartfiles -Wl,--gc-sections --specs=nano.specs --specs=nosys.specs")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
