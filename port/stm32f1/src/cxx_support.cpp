// The few C++ runtime hooks a freestanding image needs, defined here so that the linker does not
// pull libstdc++'s versions (which drag in std::terminate, abort and malloc).
#include <cstddef>

#include "stm32f1/cpu.hpp"

extern "C" void __cxa_pure_virtual() { stm32f1::cpu::reset(); }
// Objects are never destroyed (main does not return): registration is a no-op.
extern "C" int atexit(void (*)()) { return 0; }
// No heap: a deleting destructor may be emitted, never called.
void operator delete(void*) noexcept { stm32f1::cpu::reset(); }
void operator delete(void*, std::size_t) noexcept { stm32f1::cpu::reset(); }
