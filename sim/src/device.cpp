#include "sim/device.hpp"

#include <algorithm>
#include <random>
#include <utility>

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"

namespace sim {

std::vector<std::uint8_t> make_app_image(const ota::Layout& layout, std::uint32_t version,
                                         std::uint32_t size) {
  std::vector<std::uint8_t> img(size);
  std::mt19937 rng(version * 7919u + size);
  for (auto& b : img) b = static_cast<std::uint8_t>(rng());
  if (size < kVersionOffset + 8) return img;
  ota::put_u32(img.data(), ota::kSramBase + ota::kSramSize);  // initial stack pointer
  // Reset handler, Thumb, inside the image (a handler beyond the image's end is refused).
  ota::put_u32(img.data() + 4, layout.app.base + (size > 0x102 ? 0x100 : 8) + 1);
  ota::put_u32(img.data() + kVersionOffset, 0x56505041);      // "APPV"
  ota::put_u32(img.data() + kVersionOffset + 4, version);
  return img;
}

std::optional<std::uint32_t> app_image_version(std::span<const std::uint8_t> image) {
  // A real application says it in its app info record (OTA_APP_INFO), right after its vector
  // table; a synthetic one after "APPV".
  ota::AppInfo info;
  if (ota::find_image_app_info(image.data(), image.size(), info)) return info.version;
  if (image.size() < kVersionOffset + 8 || ota::get_u32(image.data() + kVersionOffset) != 0x56505041)
    return std::nullopt;
  return ota::get_u32(image.data() + kVersionOffset + 4);
}

std::uint32_t app_image_product(std::span<const std::uint8_t> image) {
  ota::AppInfo info;
  return ota::find_image_app_info(image.data(), image.size(), info) ? info.product : 0;
}

Device::Device(const ota::Layout& layout, std::uint64_t seed)
    : layout_(layout),
      power_(seed),
      internal_(power_),
      chip_(power_),
      external_(chip_, ota::kW25qUsed, 1000),
      map_{layout_, internal_, &external_},
      wire_(this) {
  info_.window = 8;  // its link loses no frame: a window of 8, as the protocol tests were written for
  for (int i = 0; i < 12; ++i) info_.uid[i] = static_cast<std::uint8_t>(seed >> (i % 8 * 8)) ^ static_cast<std::uint8_t>(0x5A + i);
}

void Device::factory_install(std::span<const std::uint8_t> app) {
  auto mem = internal_.bytes();
  const std::uint32_t off = layout_.app.base - InternalFlash::kBase;
  std::copy(app.begin(), app.end(), mem.begin() + off);
}

void Device::Wire::send(const std::uint8_t* bytes, std::size_t len) {
  if (!dev->power_.dead()) dev->out_.insert(dev->out_.end(), bytes, bytes + len);
}

void Device::boot() {
  running_ = false;
  client_.reset();
  if (power_.dead()) return;
  ++boots_;
  ota::Installer installer(map_);
  last_install_ = installer.run();
  if (power_.dead()) return;
  const bool app_ok = installer.app_valid();
  role_ = app_ok ? ota::Role::application : ota::Role::recovery;
  info_.role = role_;
  info_.app_version = app_ok ? running_version().value_or(0) : 0;
  info_.product = app_ok ? app_image_product(app_region()) : 0;  // as OTA_APP_INFO gives it
  client_.emplace(map_, wire_, info_);
  running_ = true;
  client_->boot();
}

void Device::power_cycle() {
  power_.power_on();
  boot();
}

void Device::receive(const std::uint8_t* data, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) {
    if (power_.dead() || !running_) return;
    client_->receive(data[i]);
    if (client_->reset_requested() && !power_.dead()) boot();
  }
}

std::vector<std::uint8_t> Device::take_output() { return std::exchange(out_, {}); }

std::span<const std::uint8_t> Device::region(const ota::Region& r) const {
  if (r.medium == ota::Medium::internal)
    return std::span<const std::uint8_t>(internal_.bytes()).subspan(r.base - InternalFlash::kBase, r.size);
  return std::span<const std::uint8_t>(chip_.bytes()).subspan(r.base, r.size);
}

std::optional<std::uint32_t> Device::running_version() const {
  return app_image_version(app_region());
}

std::uint64_t Device::violations() const { return internal_.violations() + chip_.violations(); }

std::string Device::last_violation() const {
  return internal_.violations() ? internal_.last_violation() : chip_.last_violation();
}

}  // namespace sim
