#include "board_wire.hpp"

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>

#include "ota/app_info.hpp"
#include "ota/host/image.hpp"
#include "sim/internal_flash.hpp"

namespace e2e {

Firmware::Firmware(const std::string& name)
    : layout(name == "external" ? &ota::kExternalLayout : &ota::kInternalLayout),
      dir(std::string(OTA_FIRMWARE_DIR) + "/" + name) {}

std::string Firmware::app_elf(std::uint32_t version) const {
  return dir + (version == 1 ? "/app.elf" : "/app-v" + std::to_string(version) + ".elf");
}

std::vector<std::uint8_t> Firmware::app_bin(std::uint32_t version) const {
  std::vector<std::uint8_t> bytes;
  if (auto e = ota::host::read_firmware(app_elf(version), layout->app.base, bytes))
    throw std::runtime_error(e.text);
  return bytes;
}

std::vector<std::uint8_t> Firmware::largest_app(std::uint32_t version, std::uint32_t seed) const {
  auto bytes = app_bin(version);
  std::mt19937 rng(seed);
  while (bytes.size() < layout->image_limit) bytes.push_back(static_cast<std::uint8_t>(rng()));
  return bytes;
}

std::vector<std::uint8_t> Firmware::with_reset_handler(std::uint32_t version, std::span<const std::uint8_t> code) const {
  auto img = app_bin(version);
  while (img.size() % 4) img.push_back(0xFF);
  const std::uint32_t at = layout->app.base + static_cast<std::uint32_t>(img.size());
  img.insert(img.end(), code.begin(), code.end());
  for (int i = 0; i < 4; ++i) img[4 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((at | 1u) >> (8 * i));
  return img;
}

std::vector<std::uint8_t> Firmware::hanging_app(std::uint32_t version) const {
  static constexpr std::uint8_t kHang[] = {0x72, 0xB6, 0x30, 0xBF, 0xFD, 0xE7};  // cpsid i; wfi; b wfi
  return with_reset_handler(version, kHang);
}

std::vector<std::uint8_t> Firmware::crashing_app(std::uint32_t version) const {
  static constexpr std::uint8_t kCrash[] = {0x00, 0xDE, 0xFE, 0xE7};  // udf #0; b .
  return with_reset_handler(version, kCrash);
}

std::vector<std::uint8_t> Firmware::relabelled_app(std::uint32_t version, const char* product) const {
  auto img = app_bin(version);
  ota::AppInfo info;
  if (!ota::find_app_info(img.data(), img.size(), info) || info.product == 0)
    throw std::runtime_error("the example application names no product");
  std::size_t at = 0;
  while (std::memcmp(img.data() + at, &info, sizeof info) != 0) at += 4;
  const auto other = ota::AppInfo::make(layout->id, version, product);
  std::memcpy(img.data() + at, &other, sizeof other);
  return img;
}

void factory_fresh(bluepill::Board& b, const Firmware& fw) {
  b.load_image(fw.bootloader_elf());
  b.load_image(fw.app_elf(1));
  b.power_on();
}

int boot_to_banner(bluepill::Board& b, double max_us) {
  const std::size_t from = b.uart_output().size();
  auto banner_done = [&] {
    const std::string& out = b.uart_output();
    const auto at = out.find("app v", from);
    return at != std::string::npos && out.find('\n', at) != std::string::npos;
  };
  const auto r = b.run_until(banner_done, max_us);
  if (r.stop != bluepill::Stop::condition) return -1;
  const std::string& out = b.uart_output();
  return std::stoi(out.substr(out.find("app v", from) + 5));
}

WireOptions reset_pressed_once(bluepill::Board& b, WireOptions opt) {
  opt.stop_at = [&b, pressed = false](double) mutable {
    if (!std::exchange(pressed, true)) b.reset_pin();
    return false;
  };
  return opt;
}

bool heard_bootloader(ota::host::Session& s, std::string_view also) {
  bool heard = false;
  for (const auto& e : s.take_events())
    heard |= e.kind == "hello" && e.text.starts_with("bootloader (recovery mode)") &&
             e.text.find(also) != std::string::npos;
  return heard;
}

WireResult run(bluepill::Board& b, ota::host::Session& s, const WireOptions& opt) {
  std::vector<std::uint8_t> rx;
  b.on_uart_tx = [&rx](std::uint8_t c) { rx.push_back(c); };
  auto now_ms = [&b] { return static_cast<double>(b.now_ns()) / 1e6; };
  const double t0 = now_ms();
  s.begin(static_cast<std::uint64_t>(now_ms()));
  WireResult res;
  while (!s.done() && now_ms() - t0 < opt.max_ms) {
    auto out = s.take_output();
    if (!out.empty()) b.uart_send(out);
    const auto r = b.run_for_us(opt.step_us);
    if (r.stop != bluepill::Stop::limit) {
      res.stop = r.stop;
      res.message = r.message;
      break;
    }
    const auto now = static_cast<std::uint64_t>(now_ms());
    if (!rx.empty()) {
      s.on_bytes(rx.data(), rx.size(), now);
      rx.clear();
    }
    s.on_tick(now);
    if (opt.stop_at && opt.stop_at(now_ms())) break;
  }
  b.on_uart_tx = nullptr;
  res.virtual_ms = now_ms() - t0;
  return res;
}

bool app_area_is(bluepill::Board& b, const ota::Layout& l, const std::vector<std::uint8_t>& image) {
  const auto mem = b.flash().bytes().subspan(l.app.base - sim::InternalFlash::kBase, image.size());
  return std::equal(image.begin(), image.end(), mem.begin());
}

}  // namespace e2e
