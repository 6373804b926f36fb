// A whole device, simulated at the level of the portable core: the flash parts of one board, the
// bootloader's install logic and the application's update client, wired as on the real board but
// without a CPU. The power-cut tests and the host-level demo run updates through it; the board
// emulator (emulator/) runs the real binaries instead.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ota/client.hpp"
#include "ota/installer.hpp"
#include "ota/w25q.hpp"
#include "sim/internal_flash.hpp"
#include "sim/power.hpp"
#include "sim/w25q_chip.hpp"

namespace sim {

// A synthetic application image: a vector table the installer accepts, the version at
// kVersionOffset (after the magic "APPV"), deterministic filler up to `size` bytes.
inline constexpr std::uint32_t kVersionOffset = 0x20;
std::vector<std::uint8_t> make_app_image(const ota::Layout& layout, std::uint32_t version,
                                         std::uint32_t size);
// The version an application image carries: its OTA_APP_INFO record (a real application), else
// the synthetic "APPV" marker; none if it has neither.
std::optional<std::uint32_t> app_image_version(std::span<const std::uint8_t> image);
// The product its app info names; 0 without one (a synthetic image).
std::uint32_t app_image_product(std::span<const std::uint8_t> image);

class Device {
 public:
  explicit Device(const ota::Layout& layout, std::uint64_t seed = 1);
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Factory programming: the application written straight into its region, nothing else.
  void factory_install(std::span<const std::uint8_t> app);

  // Reset: the bootloader's install step, then the application (or recovery) starts and says
  // HELLO. Nothing happens while the power is gone.
  void boot();
  // The power comes back after a cut, then boot().
  void power_cycle();

  // Bytes from the link. A requested reset happens at once (the link is drained by then here).
  void receive(const std::uint8_t* data, std::size_t len);
  std::vector<std::uint8_t> take_output();
  const ota::DeviceInfo& info() const { return info_; }  // what its HELLO says (uid, version, ...)
  // The rate its link runs at, as the firmware's OTA_USART1_BAUD (its clients refuse an image whose
  // app info names another); 0, as by default: not fixed. Applies from the next boot.
  void set_link_baud(std::uint32_t baud) { info_.link_baud = baud; }

  bool dead() const { return power_.dead(); }
  bool running_application() const { return running_ && role_ == ota::Role::application; }
  bool in_recovery() const { return running_ && role_ == ota::Role::recovery; }
  // The application version the board runs (read from the image, as the firmware has it built in).
  std::optional<std::uint32_t> running_version() const;
  // The bytes of a region of the layout, on whichever part holds it.
  std::span<const std::uint8_t> region(const ota::Region& r) const;
  std::span<const std::uint8_t> app_region() const { return region(layout_.app); }
  ota::Installer::Result last_install() const { return last_install_; }
  std::uint32_t boots() const { return boots_; }
  std::uint64_t violations() const;
  std::string last_violation() const;

  const ota::Layout& layout() const { return layout_; }
  PowerSupply& power() { return power_; }
  InternalFlash& internal() { return internal_; }
  W25qChip& chip() { return chip_; }

 private:
  struct Wire final : ota::Link {
    Device* dev;
    explicit Wire(Device* d) : dev(d) {}
    void send(const std::uint8_t* bytes, std::size_t len) override;
  };

  const ota::Layout& layout_;
  PowerSupply power_;
  InternalFlash internal_;
  W25qChip chip_;
  ota::W25qFlash external_;
  ota::FlashMap map_;
  Wire wire_;
  std::optional<ota::UpdateClient> client_;
  std::vector<std::uint8_t> out_;
  ota::DeviceInfo info_;
  ota::Role role_ = ota::Role::application;
  bool running_ = false;
  ota::Installer::Result last_install_ = ota::Installer::Result::nothing;
  std::uint32_t boots_ = 0;
};

}  // namespace sim
