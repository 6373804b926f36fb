#include "ota/w25q.hpp"

namespace ota {
namespace {
constexpr std::uint8_t kWriteEnable = 0x06;
constexpr std::uint8_t kPageProgram = 0x02;
constexpr std::uint8_t kSectorErase = 0x20;
constexpr std::uint8_t kReadData = 0x03;
constexpr std::uint8_t kReadStatus1 = 0x05;
constexpr std::uint8_t kJedecId = 0x9F;
constexpr std::uint8_t kBusy = 0x01;  // SR1 bit 0: program/erase/status write in progress
constexpr std::uint8_t kWel = 0x02;   // SR1 bit 1: write enable latch
}  // namespace

void W25qFlash::begin(std::uint8_t op, std::uint32_t addr) {
  const std::uint8_t cmd[4] = {op, static_cast<std::uint8_t>(addr >> 16),
                               static_cast<std::uint8_t>(addr >> 8), static_cast<std::uint8_t>(addr)};
  spi_.select(true);
  spi_.transfer(cmd, nullptr, sizeof cmd);
}

// One 0x05 command, status bytes clocked out until BUSY reads 0 or the limit is reached.
bool W25qFlash::wait_ready() {
  const std::uint8_t op = kReadStatus1;
  std::uint8_t sr = kBusy;
  spi_.select(true);
  spi_.transfer(&op, nullptr, 1);
  for (std::uint32_t n = 0; n < poll_limit_ && (sr & kBusy) != 0; ++n) spi_.transfer(nullptr, &sr, 1);
  spi_.select(false);
  return (sr & kBusy) == 0;
}

// Waits for the chip, sets WEL and checks that it took (a chip that ignored 0x06 would then
// silently ignore the program/erase too).
bool W25qFlash::write_enable() {
  if (!wait_ready()) return false;
  const std::uint8_t wren = kWriteEnable;
  spi_.select(true);
  spi_.transfer(&wren, nullptr, 1);
  spi_.select(false);
  const std::uint8_t tx[2] = {kReadStatus1, 0xFF};
  std::uint8_t rx[2] = {};
  spi_.select(true);
  spi_.transfer(tx, rx, 2);
  spi_.select(false);
  return (rx[1] & (kWel | kBusy)) == kWel;
}

bool W25qFlash::stream(std::uint32_t addr, std::uint8_t* dst, const std::uint8_t* expect,
                       std::uint32_t len) {
  if (!wait_ready()) return false;  // a read issued while BUSY would be ignored
  begin(kReadData, addr);
  bool same = true;
  if (dst) spi_.transfer(nullptr, dst, len);  // one transfer: a port may use DMA for it
  for (std::uint32_t i = 0; !dst && i < len; ++i) {
    std::uint8_t b;
    spi_.transfer(nullptr, &b, 1);
    same = same && b == (expect ? expect[i] : 0xFF);
  }
  spi_.select(false);
  return same;
}

bool W25qFlash::probe(std::uint32_t* jedec_id) {
  absent_ = true;
  if (!wait_ready()) return false;  // 0x9F is ignored while an erase is still running
  const std::uint8_t tx[4] = {kJedecId, 0xFF, 0xFF, 0xFF};
  std::uint8_t rx[4] = {};
  spi_.select(true);
  spi_.transfer(tx, rx, 4);
  spi_.select(false);
  const std::uint32_t id = std::uint32_t{rx[1]} << 16 | std::uint32_t{rx[2]} << 8 | rx[3];
  if (jedec_id != nullptr) *jedec_id = id;
  const std::uint8_t capacity = rx[3];  // log2(bytes) on Winbond and compatible parts
  if (rx[1] == 0x00 || rx[1] == 0xFF) return false;
  absent_ = capacity < 32 && (std::uint64_t{1} << capacity) < geometry().size;
  return !absent_;
}

bool W25qFlash::read(std::uint32_t addr, void* dst, std::size_t len) {
  if (absent_ || !contains(addr, static_cast<std::uint32_t>(len)) || len > geometry().size) return false;
  return len == 0 || stream(addr, static_cast<std::uint8_t*>(dst), nullptr, static_cast<std::uint32_t>(len));
}

bool W25qFlash::write(std::uint32_t addr, const void* src, std::size_t len) {
  if (absent_ || !contains(addr, static_cast<std::uint32_t>(len)) || len > geometry().size) return false;
  const auto* p = static_cast<const std::uint8_t*>(src);
  while (len > 0) {
    // The chip wraps inside its 256-byte page: never send past the end of the page.
    std::size_t chunk = kPageSize - (addr % kPageSize);
    if (chunk > len) chunk = len;
    if (!write_enable()) return false;
    begin(kPageProgram, addr);
    spi_.transfer(p, nullptr, chunk);
    spi_.select(false);  // the program starts on the rising edge of /CS
    if (!stream(addr, nullptr, p, static_cast<std::uint32_t>(chunk))) return false;  // verify
    addr += static_cast<std::uint32_t>(chunk);
    p += chunk;
    len -= chunk;
  }
  return true;
}

bool W25qFlash::erase(std::uint32_t addr) {
  if (absent_ || addr % kSectorSize != 0 || !contains(addr, kSectorSize)) return false;
  if (!write_enable()) return false;
  begin(kSectorErase, addr);
  spi_.select(false);  // the erase starts on the rising edge of /CS
  return stream(addr, nullptr, nullptr, kSectorSize);  // blank check
}

}  // namespace ota
