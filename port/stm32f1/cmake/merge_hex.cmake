# cmake -DBOOT=<bootloader.hex> -DAPP=<app.hex> -DOUT=<factory.hex> -P merge_hex.cmake
# Intel HEX records carry their own addresses, so the factory image is the bootloader's records
# followed by the application's, with one end-of-file record and the bootloader's start address.
file(STRINGS ${BOOT} boot NO_HEX_CONVERSION)
file(STRINGS ${APP} app NO_HEX_CONVERSION)
set(text "")
list(TRANSFORM boot STRIP)  # objcopy writes CR LF
list(TRANSFORM app STRIP)
foreach(line IN LISTS boot)
  if(NOT line MATCHES "^:......01")
    string(APPEND text "${line}\n")
  endif()
endforeach()
foreach(line IN LISTS app)
  if(NOT line MATCHES "^:......0[15]")  # end of file, start linear address
    string(APPEND text "${line}\n")
  endif()
endforeach()
file(WRITE ${OUT} "${text}:00000001FF\n")
