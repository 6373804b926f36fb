// Exception entry and return (ARMv7-M ARM B1.5.6-B1.5.8), done by the board because Unicorn's
// Cortex-M has no NVIC: an 8-word frame on the current stack (aligned to 8 bytes if CCR.STKALIGN,
// which the F103's r1p1 core leaves off at reset; xPSR bit 9 records the padding), LR =
// EXC_RETURN, IPSR = the exception number, handler mode on MSP, PC from the vector table at
// VTOR. Return pops the frame from the stack EXC_RETURN names.
#include <unicorn/unicorn.h>

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kSpsel = 2;
bool frame_ok(std::uint32_t frame) { return frame >= kSramBase && frame <= kSramBase + kSramSize - 32 && frame % 4 == 0; }
}  // namespace

int Chip::current_priority() const {
  return scs.execution_priority(reg(UC_ARM_REG_PRIMASK), reg(UC_ARM_REG_BASEPRI), reg(UC_ARM_REG_FAULTMASK));
}

// WFI wakes on a pending exception that would preempt if PRIMASK were clear.
bool Chip::wake_pending() const {
  return scs.takeable(scs.execution_priority(0, reg(UC_ARM_REG_BASEPRI), reg(UC_ARM_REG_FAULTMASK))) != 0;
}

bool Chip::take_exception(int n) {
  static constexpr int kFrameRegs[] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
                                       UC_ARM_REG_R12, UC_ARM_REG_LR};
  const std::uint32_t xpsr = reg(UC_ARM_REG_XPSR);
  const std::uint32_t control = reg(UC_ARM_REG_CONTROL);
  const bool thread = (xpsr & 0x1FF) == 0;
  const bool psp = thread && (control & kSpsel) != 0;
  const std::uint32_t sp = reg(UC_ARM_REG_SP);
  const std::uint32_t pad = scs.stack_align8() ? (sp >> 2) & 1u : 0u;  // a word below, to 8 bytes
  const std::uint32_t frame = sp - 32 - 4 * pad;
  const std::uint32_t return_address = pc();
  if (!frame_ok(frame)) {
    report(Severity::error, "exception " + std::to_string(n) + " entry: stack pointer " + hex32(sp) +
                                " leaves no room for a frame in SRAM (stack overflow?)");
    return false;
  }
  std::uint32_t words[8];
  for (int i = 0; i < 6; ++i) words[i] = reg(kFrameRegs[i]);
  words[6] = return_address;
  words[7] = xpsr | (pad << 9);
  for (int i = 0; i < 8; ++i) bus_write(frame + 4u * static_cast<std::uint32_t>(i), 4, words[i]);

  std::uint32_t vector = 0;
  if (!bus_read(scs.vtor() + 4u * static_cast<std::uint32_t>(n), 4, vector) || (vector & 1u) == 0) {
    report(Severity::error, "exception " + std::to_string(n) + ": vector at " +
                                hex32(scs.vtor() + 4u * static_cast<std::uint32_t>(n)) + " is " + hex32(vector) +
                                " (not a Thumb address)");
    return false;
  }
  set_reg(UC_ARM_REG_SP, frame);
  if (psp) set_reg(UC_ARM_REG_CONTROL, control & ~kSpsel);  // thread mode: swaps to MSP
  set_reg(UC_ARM_REG_XPSR, (xpsr & 0xF8000000u) | (1u << 24) | static_cast<std::uint32_t>(n));
  set_reg(UC_ARM_REG_LR, !thread ? 0xFFFFFFF1u : psp ? 0xFFFFFFFDu : 0xFFFFFFF9u);
  resume_pc_ = vector & ~1u;
  scs.activate(n);
  sleeping_ = false;
  return true;
}

bool Chip::exception_return(std::uint32_t exc_return) {
  static constexpr int kFrameRegs[] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
                                       UC_ARM_REG_R12, UC_ARM_REG_LR};
  const int n = static_cast<int>(reg(UC_ARM_REG_XPSR) & 0x1FF);
  const std::uint32_t mode = exc_return & 0xF;
  if (n == 0 || !scs.active(n)) {
    report(Severity::error, "branch to " + hex32(exc_return) +
                                (n == 0 ? " in thread mode (not an exception return)" : " from an inactive exception"));
    return fault("bad exception return");
  }
  if ((exc_return & 0xFFFFFFF0u) != 0xFFFFFFF0u || (mode != 1 && mode != 9 && mode != 0xD)) {
    report(Severity::error, "invalid EXC_RETURN " + hex32(exc_return));
    return fault("INVPC");
  }
  const bool to_thread = mode != 1;
  const bool to_psp = mode == 0xD;
  const std::uint32_t frame = to_psp ? reg(UC_ARM_REG_PSP) : reg(UC_ARM_REG_MSP);
  if (!frame_ok(frame)) {
    report(Severity::error, "exception return: frame at " + hex32(frame) + " is not in SRAM");
    return false;
  }
  std::uint32_t words[8];
  for (int i = 0; i < 8; ++i) bus_read(frame + 4u * static_cast<std::uint32_t>(i), 4, words[i]);
  const std::uint32_t xpsr = words[7];
  if (to_thread != ((xpsr & 0x1FF) == 0) || (xpsr & (1u << 24)) == 0) {
    report(Severity::error, "exception return with EXC_RETURN " + hex32(exc_return) + " finds xPSR " + hex32(xpsr) +
                                " in the frame (INVPC/INVSTATE UsageFault on silicon)");
    return false;
  }
  scs.deactivate(n);
  for (int i = 0; i < 6; ++i) set_reg(kFrameRegs[i], words[i]);
  const std::uint32_t sp_after = frame + 32 + ((xpsr >> 9) & 1u) * 4;
  set_reg(UC_ARM_REG_XPSR, xpsr & ~(1u << 9));
  if (to_psp) set_reg(UC_ARM_REG_CONTROL, reg(UC_ARM_REG_CONTROL) | kSpsel);  // thread mode again: swaps to PSP
  set_reg(UC_ARM_REG_SP, sp_after);
  resume_pc_ = words[6] & ~1u;
  if (to_thread && !scs.any_active() && scs.sleep_on_exit()) sleeping_ = true;
  return true;
}

// The firmware did something the silicon turns into a fault. Already reported as an error; in
// strict mode the board stops, otherwise the firmware's HardFault handler runs.
bool Chip::fault(const std::string& what, std::uint32_t usage_cfsr) {
  if (cfg_.strict) return false;
  if (usage_cfsr != 0) {
    // A UsageFault is taken as such when SHCSR enables it and it can preempt; otherwise it
    // escalates to HardFault, HFSR.FORCED set (PM0056 4.4.15-16).
    const bool own = scs.usage_fault_enabled() && !scs.active(exc::usagefault) &&
                     scs.priority(exc::usagefault) < current_priority();
    scs.record_fault(usage_cfsr, !own);
    if (own) {
      scs.set_pending(exc::usagefault);
      return take_exception(exc::usagefault);
    }
  }
  if (scs.active(exc::hardfault)) {
    report(Severity::error, what + " inside the HardFault handler: lockup");
    return false;
  }
  scs.set_pending(exc::hardfault);
  return take_exception(exc::hardfault);
}

}  // namespace bluepill
