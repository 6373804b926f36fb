# cmake -DASM=<regions.s> -DLD=<out.ld> -DVARS=<out.cmake> -DIMAGE=bootloader|app -P gen_memory.cmake
# Turns the "@LD NAME value" lines that regions.cpp left in its assembly output into the MEMORY
# block of a linker script, and the same values into a CMake file for the size checks.
file(STRINGS "${ASM}" lines REGEX "^@LD ")
set(vars "")
foreach(line IN LISTS lines)
  if(line MATCHES "^@LD ([A-Z_]+) (-?[0-9]+)$")
    math(EXPR hex "${CMAKE_MATCH_2}" OUTPUT_FORMAT HEXADECIMAL)
    set(${CMAKE_MATCH_1} ${hex})
    string(APPEND vars "set(${CMAKE_MATCH_1} ${hex})\n")
  endif()
endforeach()
foreach(v FLASH_ORIGIN FLASH_LENGTH RAM_ORIGIN RAM_LENGTH IMAGE_LIMIT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "${ASM}: no value for ${v}")
  endif()
endforeach()
set(limit "")
if(IMAGE STREQUAL "app")
  set(limit "OTA_IMAGE_LIMIT = ${IMAGE_LIMIT};\n")
else()
  string(APPEND vars "unset(IMAGE_LIMIT)\n")
endif()
file(WRITE "${LD}.tmp" "/* Generated from core/include/ota/layout.hpp by port/stm32f1/ld/gen_memory.cmake. */
MEMORY
{
  FLASH (rx)  : ORIGIN = ${FLASH_ORIGIN}, LENGTH = ${FLASH_LENGTH}
  RAM   (rwx) : ORIGIN = ${RAM_ORIGIN}, LENGTH = ${RAM_LENGTH}
}
${limit}INCLUDE sections.ld
")
file(WRITE "${VARS}.tmp" "${vars}")
# Rewrite only on change, so that images relink only when the layout really moved.
configure_file("${LD}.tmp" "${LD}" COPYONLY)
configure_file("${VARS}.tmp" "${VARS}" COPYONLY)
