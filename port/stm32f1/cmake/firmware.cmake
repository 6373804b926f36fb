# Functions that turn sources into flashable images of one layout:
#   ota_firmware_image(<target> LAYOUT internal|external IMAGE bootloader|app OUTPUT_NAME <name>
#                      SOURCES ... [LIBRARIES ...] [DEFINITIONS ...])
#     -> ${CMAKE_BINARY_DIR}/<layout>/<name>.elf/.bin/.hex/.map, checked after every link
#   ota_factory_image(<layout> <bootloader target> <app target>)
#     -> ${CMAKE_BINARY_DIR}/<layout>/factory.hex/.bin (bootloader, 0xFF up to the app, app)
# and, once every image is declared, the `sizes` target (text+data of every image vs its region).
get_filename_component(OTA_PORT_DIR ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
set(OTA_PORT_DIR ${OTA_PORT_DIR} CACHE INTERNAL "port/stm32f1, for the functions below")
# The bootloaders' size goals are this project's own: `sizes` shows them only when this tree is
# the top-level project, not in a user's project that adds it.
set_property(GLOBAL PROPERTY OTA_SIZE_GOALS ${PROJECT_IS_TOP_LEVEL})
# (Paths from here, not from CMAKE_SOURCE_DIR: that is a user's own project when this tree is
# added to it.)
get_filename_component(OTA_CORE_INCLUDE_DIR ${CMAKE_CURRENT_LIST_DIR}/../../../core/include ABSOLUTE)
set(OTA_CORE_INCLUDE_DIR ${OTA_CORE_INCLUDE_DIR} CACHE INTERNAL "core/include, for the functions below")
find_program(OTA_READELF arm-none-eabi-readelf REQUIRED)

# Link-time optimisation of the port, the board files and the images (not of ota_core_<layout>, whose
# flags are the core's own): smaller images, the bootloader above all.
include(CheckIPOSupported)
check_ipo_supported(RESULT lto OUTPUT ipo_error LANGUAGES CXX)
if(NOT lto)
  message(STATUS "firmware: no LTO (${ipo_error})")
endif()
set(OTA_FIRMWARE_LTO ${lto} CACHE INTERNAL "LTO for the firmware targets of the port")

# The linker script of one (layout, image) pair, generated from layout.hpp.
function(_ota_linker_script layout image out_target)
  set(name ota_ld_${layout}_${image})
  set(${out_target} ${name} PARENT_SCOPE)
  if(TARGET ${name})
    return()
  endif()
  set(dir ${CMAKE_BINARY_DIR}/ld)
  file(MAKE_DIRECTORY ${dir})
  set(layout_var kInternalLayout)
  if(layout STREQUAL "external")
    set(layout_var kExternalLayout)
  endif()
  separate_arguments(cpu_flags UNIX_COMMAND "${OTA_CPU_FLAGS}")
  # gen_memory.cmake rewrites the .ld only when its text changes (images relink only then), so
  # the command's own output is a stamp: otherwise an edit of layout.hpp that moves nothing would
  # leave the .ld older than its inputs and the command would run at every build.
  add_custom_command(
    OUTPUT ${dir}/${layout}-${image}.stamp
    BYPRODUCTS ${dir}/${layout}-${image}.ld ${dir}/${layout}-${image}.cmake
    COMMAND ${CMAKE_CXX_COMPILER} ${cpu_flags} -std=c++20 -I${OTA_CORE_INCLUDE_DIR}
            -DOTA_LD_LAYOUT=${layout_var} -DOTA_LD_IMAGE=${image}
            -S ${OTA_PORT_DIR}/ld/regions.cpp -o ${dir}/${layout}-${image}.s
    COMMAND ${CMAKE_COMMAND} -DASM=${dir}/${layout}-${image}.s -DLD=${dir}/${layout}-${image}.ld
            -DVARS=${dir}/${layout}-${image}.cmake -DIMAGE=${image}
            -P ${OTA_PORT_DIR}/ld/gen_memory.cmake
    COMMAND ${CMAKE_COMMAND} -E touch ${dir}/${layout}-${image}.stamp
    DEPENDS ${OTA_PORT_DIR}/ld/regions.cpp ${OTA_PORT_DIR}/ld/gen_memory.cmake
            ${OTA_CORE_INCLUDE_DIR}/ota/layout.hpp
    COMMENT "Linker regions of the ${layout} ${image} from layout.hpp"
    VERBATIM)
  add_custom_target(${name} DEPENDS ${dir}/${layout}-${image}.stamp)
endfunction()

function(ota_firmware_image target)
  cmake_parse_arguments(PARSE_ARGV 1 A "" "LAYOUT;IMAGE;OUTPUT_NAME" "SOURCES;LIBRARIES;DEFINITIONS")
  # The board library brings the flash map the image runs on: one of the other layout would build
  # an image that stages its updates where this layout's bootloader never looks.
  foreach(lib IN LISTS A_LIBRARIES)
    if(lib MATCHES "^ota_board_(.+)$" AND NOT CMAKE_MATCH_1 STREQUAL A_LAYOUT)
      message(FATAL_ERROR "ota_firmware_image(${target}): LAYOUT ${A_LAYOUT} with ${lib}: "
                          "use ota_board_${A_LAYOUT} (the board library must match the layout)")
    endif()
  endforeach()
  _ota_linker_script(${A_LAYOUT} ${A_IMAGE} ld_target)
  set(ld ${CMAKE_BINARY_DIR}/ld/${A_LAYOUT}-${A_IMAGE}.ld)
  set(out ${CMAKE_BINARY_DIR}/${A_LAYOUT})
  set(elf ${out}/${A_OUTPUT_NAME}.elf)

  add_executable(${target} ${A_SOURCES})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${A_OUTPUT_NAME} SUFFIX .elf RUNTIME_OUTPUT_DIRECTORY ${out} LINK_DEPENDS
    "${ld};${OTA_PORT_DIR}/ld/sections.ld")
  add_dependencies(${target} ${ld_target})
  set_target_properties(${target} PROPERTIES INTERPROCEDURAL_OPTIMIZATION ${OTA_FIRMWARE_LTO})
  if(A_IMAGE STREQUAL "app")  # applications get the 43 device entries of the vector table
    target_link_options(${target} PRIVATE -Wl,--undefined=stm32f1_irq_vectors)
  endif()
  target_compile_options(${target} PRIVATE ${OTA_WARNINGS})
  target_compile_definitions(${target} PRIVATE ${A_DEFINITIONS})
  target_link_libraries(${target} PRIVATE ${A_LIBRARIES})
  # -u: take the port's small memcpy/memset (src/mem.cpp) before newlib's; with LTO the calls
  # appear only after the archives were scanned.
  # --sort-section=alignment: input sections by alignment, largest first, so that fewer gaps
  # pad the 2-byte-aligned code between 4-byte-aligned sections (4 B off each bootloader).
  target_link_options(${target} PRIVATE -T${ld} -L${OTA_PORT_DIR}/ld -Wl,-u,memcpy,-u,memset
                      -Wl,-Map=${out}/${A_OUTPUT_NAME}.map -Wl,--no-warn-rwx-segments
                      -Wl,--sort-section=alignment)
  # The .bin and .hex of an earlier link go first, and come back only from an image that links
  # and passes the region check: a link that fails leaves no stale file to flash or push.
  add_custom_command(TARGET ${target} PRE_LINK
    COMMAND ${CMAKE_COMMAND} -E rm -f ${out}/${A_OUTPUT_NAME}.bin ${out}/${A_OUTPUT_NAME}.hex
    VERBATIM)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DELF=${elf} -DVARS=${CMAKE_BINARY_DIR}/ld/${A_LAYOUT}-${A_IMAGE}.cmake
            -DREADELF=${OTA_READELF} -P ${OTA_PORT_DIR}/cmake/check_image.cmake
    COMMAND ${CMAKE_OBJCOPY} -O binary ${elf} ${out}/${A_OUTPUT_NAME}.bin
    COMMAND ${CMAKE_OBJCOPY} -O ihex ${elf} ${out}/${A_OUTPUT_NAME}.hex
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY OTA_FIRMWARE_IMAGES
    "${A_LAYOUT}/${A_OUTPUT_NAME}.elf|${A_LAYOUT}-${A_IMAGE}.cmake|${A_IMAGE}")
  set_property(GLOBAL APPEND PROPERTY OTA_FIRMWARE_TARGETS ${target})
endfunction()

function(ota_factory_image layout boot app)
  set(out ${CMAKE_BINARY_DIR}/${layout})
  add_custom_command(
    OUTPUT ${out}/factory.hex ${out}/factory.bin
    COMMAND ${CMAKE_COMMAND} -DBOOT=$<TARGET_FILE_DIR:${boot}>/$<TARGET_FILE_BASE_NAME:${boot}>.hex
            -DAPP=$<TARGET_FILE_DIR:${app}>/$<TARGET_FILE_BASE_NAME:${app}>.hex
            -DOUT=${out}/factory.hex -P ${OTA_PORT_DIR}/cmake/merge_hex.cmake
    COMMAND ${CMAKE_OBJCOPY} -I ihex -O binary --gap-fill 0xFF ${out}/factory.hex ${out}/factory.bin
    DEPENDS ${boot} ${app} ${OTA_PORT_DIR}/cmake/merge_hex.cmake
    COMMENT "Factory image of the ${layout} layout"
    VERBATIM)
  add_custom_target(factory_${layout} ALL DEPENDS ${out}/factory.hex ${out}/factory.bin)
endfunction()

# `sizes`: declared at the end of the top-level directory, when every image is known.
function(_ota_sizes_target)
  get_property(images GLOBAL PROPERTY OTA_FIRMWARE_IMAGES)
  get_property(targets GLOBAL PROPERTY OTA_FIRMWARE_TARGETS)
  set(manifest "")
  foreach(i IN LISTS images)
    string(APPEND manifest "list(APPEND IMAGES \"${i}\")\n")
  endforeach()
  file(WRITE ${CMAKE_BINARY_DIR}/images.cmake "${manifest}")
  get_property(goals GLOBAL PROPERTY OTA_SIZE_GOALS)
  add_custom_target(sizes
    COMMAND ${CMAKE_COMMAND} -DDIR=${CMAKE_BINARY_DIR} -DSIZE=${CMAKE_SIZE} -DGOALS=${goals}
            -P ${OTA_PORT_DIR}/cmake/sizes.cmake
    VERBATIM)
  add_dependencies(sizes ${targets})
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL _ota_sizes_target)
