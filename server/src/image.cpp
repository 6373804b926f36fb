#include "ota/host/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/crc.hpp"
#include "ota/flash_map.hpp"
#include "ota/host/session.hpp"

namespace ota::host {

namespace {

constexpr std::uint32_t kMagic = 0x4941544F;  // "OTAI"
constexpr std::size_t kHeader = 32;
// An .ota holds at most 56 KB after its header; up to 1 MB is read, to say what is wrong with it.
constexpr std::size_t kMaxOta = kHeader + (1u << 20);

std::string hex32(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08X", v);
  return b;
}

// Data at an absolute address, and where in the input it came from.
struct Chunk {
  std::uint32_t addr;
  std::vector<std::uint8_t> data;
  std::string where;
};

// Chunks flattened to one binary from `base`. Two that give bytes for one address are two images
// in one file (Intel HEX files merged, overlapping ELF segments): which one is meant cannot be told.
Error flatten(std::vector<Chunk> chunks, std::uint32_t base, std::vector<std::uint8_t>& out) {
  out.clear();
  std::stable_sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) { return a.addr < b.addr; });
  std::uint64_t end = 0;  // of the data so far
  const Chunk* last = nullptr;
  for (const Chunk& c : chunks) {
    if (c.data.empty()) continue;
    if (c.addr < base)
      return Error{"data at " + hex32(c.addr) + " lies below the application address " + hex32(base)};
    if (last && c.addr < end)
      return Error{c.where + " gives bytes at " + hex32(c.addr) + " that " + last->where +
                   " gave already (two images in one file?)"};
    const std::size_t off = c.addr - base;
    if (off + c.data.size() > 16u * 1024 * 1024) return Error{"data at " + hex32(c.addr) + " is far beyond the flash"};
    if (out.size() < off + c.data.size()) out.resize(off + c.data.size(), 0xFF);
    std::copy(c.data.begin(), c.data.end(), out.begin() + static_cast<std::ptrdiff_t>(off));
    end = std::uint64_t{c.addr} + c.data.size();
    last = &c;
  }
  if (out.empty()) return Error{"no data"};
  return {};
}

Error read_hex(const std::vector<std::uint8_t>& text, std::uint32_t base, std::vector<std::uint8_t>& out) {
  std::vector<Chunk> chunks;
  std::uint32_t upper = 0;
  std::size_t line_no = 0;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string s(text.begin(), text.end());
  std::size_t pos = 0;
  bool ended = false;
  while (pos < s.size()) {
    std::size_t eol = s.find('\n', pos);
    if (eol == std::string::npos) eol = s.size();
    std::string line = s.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\x1A')) line.pop_back();
    if (line.empty()) continue;
    const std::string where = "line " + std::to_string(line_no);
    if (ended && line[0] == ':') return Error{where + ": records after the end-of-file record (two files joined?)"};
    if (ended) continue;  // (padding some tools add: Ctrl-Z, text)
    if (line[0] != ':' || line.size() < 11 || line.size() % 2 == 0) return Error{where + ": not an Intel HEX record"};
    std::vector<std::uint8_t> rec;
    for (std::size_t i = 1; i + 1 < line.size(); i += 2) {
      const int hi = nib(line[i]), lo = nib(line[i + 1]);
      if (hi < 0 || lo < 0) return Error{where + ": bad hex digit"};
      rec.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
    std::uint8_t sum = 0;
    for (auto b : rec) sum = static_cast<std::uint8_t>(sum + b);
    if (sum != 0) return Error{where + ": checksum error"};
    const std::size_t n = rec[0];
    if (rec.size() != n + 5) return Error{where + ": length field does not match"};
    const std::uint32_t addr = (rec[1] << 8) | rec[2];
    if ((rec[3] == 0x02 || rec[3] == 0x04) && n != 2) return Error{where + ": an address record holds 2 data bytes"};
    switch (rec[3]) {
      case 0x00:
        chunks.push_back({upper + addr, {rec.begin() + 4, rec.begin() + 4 + static_cast<std::ptrdiff_t>(n)}, where});
        break;
      case 0x01: ended = true; break;
      case 0x02: upper = static_cast<std::uint32_t>(((rec[4] << 8) | rec[5]) << 4); break;
      case 0x04: upper = static_cast<std::uint32_t>(((rec[4] << 8) | rec[5]) << 16); break;
      case 0x03: case 0x05: break;  // start address records
      default: return Error{where + ": unknown record type"};
    }
  }
  if (!ended) return Error{"no end-of-file record"};
  return flatten(std::move(chunks), base, out);
}

Error read_elf(const std::vector<std::uint8_t>& f, std::uint32_t base, std::vector<std::uint8_t>& out) {
  if (f.size() < 52 || f[4] != 1 || f[5] != 1) return Error{"not a 32-bit little-endian ELF file"};
  if (get_u16(&f[18]) != 40) return Error{"not an ARM ELF file"};
  const std::uint32_t phoff = get_u32(&f[28]);
  const std::uint16_t phentsize = get_u16(&f[42]);
  const std::uint16_t phnum = get_u16(&f[44]);
  std::vector<Chunk> chunks;
  for (std::uint32_t i = 0; i < phnum; ++i) {
    const std::size_t ph = phoff + static_cast<std::size_t>(i) * phentsize;
    if (ph + 32 > f.size()) return Error{"truncated program header table"};
    const std::uint32_t type = get_u32(&f[ph]), offset = get_u32(&f[ph + 4]);
    const std::uint32_t paddr = get_u32(&f[ph + 12]), filesz = get_u32(&f[ph + 16]);
    if (type != 1 || filesz == 0) continue;  // PT_LOAD with bytes in the file
    if (std::size_t(offset) + filesz > f.size()) return Error{"segment beyond the end of the file"};
    chunks.push_back({paddr, {f.begin() + offset, f.begin() + offset + filesz}, "segment " + std::to_string(i)});
  }
  return flatten(std::move(chunks), base, out);
}

}  // namespace

std::uint32_t Image::crc() const { return crc32(bytes.data(), bytes.size()); }

std::optional<AppInfo> Image::app_info() const {
  AppInfo info;
  if (!find_image_app_info(bytes.data(), bytes.size(), info)) return std::nullopt;
  return info;
}

// At most `max` bytes: a larger file is refused by its size, unread; an input without a size (a
// device such as /dev/zero, a pipe) is read up to max + 1 bytes. Read errors (EIO) are errors.
Error load_file(const std::filesystem::path& file, std::vector<std::uint8_t>& bytes, std::size_t max) {
  const std::string name = file.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open " + name + ": " + std::strerror(errno)};
  struct stat st {};
  const auto too_large = [&] {
    return Error{"cannot read " + name + ": larger than " + std::to_string(max >> 10) + " KB, which no firmware is"};
  };
  Error e;
  if (::fstat(fd, &st) != 0) e = Error{"cannot read " + name + ": " + std::strerror(errno)};
  else if (S_ISDIR(st.st_mode)) e = Error{"cannot read " + name + ": a directory"};
  else if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max) e = too_large();
  bytes.clear();
  while (!e) {
    std::uint8_t buf[64 * 1024];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) e = Error{"cannot read " + name + ": " + std::strerror(errno)};
    else if (n == 0) break;
    else if (bytes.size() + static_cast<std::size_t>(n) > max) e = too_large();
    else bytes.insert(bytes.end(), buf, buf + n);
  }
  ::close(fd);
  return e;
}

namespace {
// Appends to what `to` opens (a FIFO, a device, the file behind /dev/stdout): not replaced.
Error write_into(const std::filesystem::path& to, const std::vector<std::uint8_t>& bytes) {
  const int fd = ::open(to.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return Error{"cannot write " + to.string() + ": " + std::strerror(errno)};
  Error e;
  for (std::size_t done = 0; !e && done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) e = Error{"cannot write " + to.string() + ": " + std::strerror(errno)};
    else done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 && !e) e = Error{"cannot write " + to.string() + ": " + std::strerror(errno)};
  return e;
}
}  // namespace

// A regular file (or a new one) is written beside and renamed over: a write that fails half-way (a
// full disk) leaves the old file, not a truncated one. A symlink is followed to the file it names,
// which is written so. What is not a regular file (a FIFO, a device) is written into, and so is
// what a link into /proc names (/dev/stdout, /dev/fd/N: an open file, appended to as the shell
// opened it).
Error save_file(const std::filesystem::path& to, const std::vector<std::uint8_t>& bytes) {
  std::error_code ec;
  std::filesystem::path file = to;
  // Its directory with every link resolved (/dev/fd is a link to /proc/self/fd), then its own
  // links one by one.
  auto real_dir = [&ec](const std::filesystem::path& f) {
    const std::filesystem::path dir = std::filesystem::canonical(f.parent_path().empty() ? "." : f.parent_path(), ec);
    return ec ? f : dir / f.filename();
  };
  file = real_dir(file);
  for (int hops = 0; !file.string().starts_with("/proc/") && std::filesystem::is_symlink(file, ec); ++hops) {
    if (hops == 40) return Error{"cannot write " + to.string() + ": too many levels of symbolic links"};
    const std::filesystem::path target = std::filesystem::read_symlink(file, ec);
    if (ec) return Error{"cannot write " + to.string() + ": " + ec.message()};
    file = real_dir(target.is_absolute() ? target : file.parent_path() / target);
  }
  if (file.string().starts_with("/proc/")) return write_into(to, bytes);
  const auto status = std::filesystem::status(file, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    if (std::filesystem::is_directory(status)) return Error{"cannot write " + to.string() + ": a directory"};
    return write_into(to, bytes);
  }
  std::filesystem::path part = file;
  part += ".part";
  errno = 0;
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    const int err = errno ? errno : EIO;
    std::filesystem::remove(part, ec);
    return Error{"cannot write " + to.string() + ": " + std::strerror(err)};
  }
  std::filesystem::rename(part, file, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(part, ec);
    return Error{"cannot write " + to.string() + ": " + why};
  }
  return {};
}

Error read_firmware(const std::filesystem::path& file, std::uint32_t base, std::vector<std::uint8_t>& out) {
  std::vector<std::uint8_t> raw;
  if (Error e = load_file(file, raw)) return e;
  const std::string ext = file.extension().string();
  Error e;
  if (raw.size() >= 4 && get_u32(raw.data()) == kMagic)
    return Error{file.string() + ": already an .ota image (`ota image info` shows it; `ota push` sends it)"};
  if (raw.size() >= 4 && std::memcmp(raw.data(), "\x7F" "ELF", 4) == 0) e = read_elf(raw, base, out);
  else if (ext == ".hex" || ext == ".ihex" || (!raw.empty() && raw[0] == ':')) e = read_hex(raw, base, out);
  else out = std::move(raw);
  if (e) return Error{file.string() + ": " + e.text};
  if (out.empty()) return Error{file.string() + ": empty"};
  return {};
}

Error check_image(const Layout& layout, const std::vector<std::uint8_t>& bytes) {
  if (bytes.size() < 8) return Error{"image of " + std::to_string(bytes.size()) + " bytes holds no vector table"};
  if (bytes.size() > layout.image_limit)
    return Error{"image of " + std::to_string(bytes.size()) + " bytes is too large for the " +
                 layout.name + " layout (limit " + std::to_string(layout.image_limit) + " bytes)"};
  const std::uint32_t sp = get_u32(bytes.data()), reset = get_u32(bytes.data() + 4);
  if (!vector_table_sane(layout, sp, reset, static_cast<std::uint32_t>(bytes.size())))
    return Error{"vector table does not fit the " + std::string(layout.name) + " layout: initial SP " +
                 hex32(sp) + ", reset handler " + hex32(reset) + " (the image spans " + hex32(layout.app.base) +
                 "-" + hex32(layout.app.base + static_cast<std::uint32_t>(bytes.size()) - 1) + ")" +
                 (reset < layout.app.base && reset >= 0x08000000
                      ? "; a reset handler in the bootloader's 8 KB: this is a bootloader or factory image, "
                        "not an application (a .bin is taken to start at the application address)"
                      : "")};
  // Where the linker ended the image (OTA_APP_INFO's second record, ota/app_info.hpp): a file
  // shorter than that was cut short. (Images without the record, older ones, are not checked.)
  for (std::size_t off = 0; off + 12 <= std::min<std::size_t>(bytes.size(), kAppInfoWindow + 12); off += 4) {
    if (get_u32(&bytes[off]) != AppInfo::kMagic0 || get_u32(&bytes[off + 4]) != AppInfo::kEndMagic) continue;
    const std::uint32_t end = get_u32(&bytes[off + 8]);
    if (end < layout.app.base + off + 12 || end - layout.app.base > layout.image_limit) continue;  // not one
    const std::uint32_t expected = end - layout.app.base;
    if (bytes.size() < expected)
      return Error{"image of " + std::to_string(bytes.size()) + " bytes, but its application was linked to " +
                   std::to_string(expected) + " bytes (ends at " + hex32(end) +
                   "): the file is cut short (a copy or download that stopped?)"};
    break;
  }
  return {};
}

Error check_app_info_records(const std::vector<std::uint8_t>& bytes) {
  std::optional<AppInfo> first;
  std::size_t first_at = 0;
  for (std::size_t off = 0; off + 8 <= bytes.size(); off += 4) {
    if (get_u32(&bytes[off]) != AppInfo::kMagic0 || get_u32(&bytes[off + 4]) != AppInfo::kMagic1) continue;
    const auto r = app_info_in(&bytes[off], std::min<std::size_t>(bytes.size() - off, AppInfo::kSize));
    if (!r) continue;
    if (!first) {
      first = r;
      first_at = off;
    } else if (r->version != first->version || r->layout != first->layout || r->product != first->product ||
               r->link_baud != first->link_baud) {
      auto said = [](const AppInfo& i) {
        return "version " + std::to_string(i.version) + " of product " + (i.product ? hex8(i.product) : "none") +
               (i.link_baud ? " at " + std::to_string(i.link_baud) + " baud" : "");
      };
      return Error{"two app info records that disagree: " + said(*first) + " at offset " + std::to_string(first_at) +
                   ", " + said(*r) + " at offset " + std::to_string(off) +
                   " (an image declares one OTA_APP_INFO: does a library declare its own?)"};
    }
  }
  return {};
}

std::vector<std::uint8_t> encode_ota_file(const Image& img) {
  std::vector<std::uint8_t> f(kHeader + img.bytes.size());
  put_u32(&f[0], kMagic);
  f[4] = 1;
  f[5] = static_cast<std::uint8_t>(img.layout);
  put_u32(&f[8], img.version);
  put_u32(&f[12], static_cast<std::uint32_t>(img.bytes.size()));
  put_u32(&f[16], img.crc());
  put_u32(&f[20], img.load_address);
  put_u32(&f[28], crc32(f.data(), 28));
  std::copy(img.bytes.begin(), img.bytes.end(), f.begin() + kHeader);
  return f;
}

Error decode_ota_file(const std::vector<std::uint8_t>& f, Image& img) {
  if (f.size() < kHeader || get_u32(&f[0]) != kMagic) return Error{"not an .ota image (no OTAI header): make one from the .elf/.hex/.bin with `ota image build`"};
  if (get_u32(&f[28]) != crc32(f.data(), 28)) return Error{"image header is corrupted (CRC mismatch)"};
  if (f[4] != 1) return Error{"image format " + std::to_string(f[4]) + " is not supported"};
  const Layout* l = layout_by_id(static_cast<LayoutId>(f[5]));
  if (!l) return Error{"unknown layout id " + std::to_string(f[5])};
  const std::uint32_t size = get_u32(&f[12]);
  if (f.size() < kHeader + size)
    return Error{"image is truncated: header says " + std::to_string(size) + " bytes, file holds " +
                 std::to_string(f.size() - kHeader)};
  if (f.size() > kHeader + size)
    return Error{"file holds " + std::to_string(f.size() - kHeader - size) +
                 " bytes after the image (two files joined?)"};
  img.layout = l->id;
  img.version = get_u32(&f[8]);
  img.load_address = get_u32(&f[20]);
  img.bytes.assign(f.begin() + kHeader, f.end());
  if (img.crc() != get_u32(&f[16])) return Error{"image payload is corrupted (CRC-32 mismatch)"};
  if (img.load_address != l->app.base)
    return Error{"its header says the image goes at " + hex32(img.load_address) + ", not at the " + l->name +
                 " layout's application address " + hex32(l->app.base)};
  if (Error e = check_app_info_records(img.bytes)) return e;
  AppInfo info;
  if (find_image_app_info(img.bytes.data(), img.bytes.size(), info)) {
    const Layout* built = layout_by_id(static_cast<LayoutId>(info.layout));
    if (built != l)
      return Error{"its header says the " + std::string(l->name) + " layout, the image's app info says " +
                   (built ? std::string(built->name) : "layout " + std::to_string(info.layout)) +
                   " (the device would refuse it after the download)"};
    if (info.version != img.version)
      return Error{"its header says version " + std::to_string(img.version) + ", the image's app info says " +
                   std::to_string(info.version)};
  }
  return {};
}

Error load_ota_file(const std::filesystem::path& file, Image& img) {
  std::vector<std::uint8_t> f;
  if (Error e = load_file(file, f, kMaxOta)) return e;
  if (Error e = decode_ota_file(f, img)) return Error{file.string() + ": " + e.text};
  return {};
}

Error load_usable_ota_file(const std::filesystem::path& file, Image& img) {
  if (Error e = load_ota_file(file, img)) return e;
  if (Error e = check_image(*layout_by_id(img.layout), img.bytes)) return Error{file.string() + ": unusable: " + e.text};
  return {};
}

}  // namespace ota::host
