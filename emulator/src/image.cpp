#include "bluepill/image.hpp"

#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

namespace bluepill {

namespace {
std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t at) {
  if (at + 4 > b.size()) throw std::runtime_error("ELF: truncated file");
  return static_cast<std::uint32_t>(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24);
}
std::uint16_t le16(const std::vector<std::uint8_t>& b, std::size_t at) {
  if (at + 2 > b.size()) throw std::runtime_error("ELF: truncated file");
  return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8);
}
}  // namespace

std::vector<Segment> read_elf(const std::vector<std::uint8_t>& b) {
  if (b.size() < 52 || std::memcmp(b.data(), "\x7F" "ELF", 4) != 0) throw std::runtime_error("not an ELF file");
  if (b[4] != 1 || b[5] != 1) throw std::runtime_error("ELF: not a 32-bit little-endian file");
  if (le16(b, 18) != 40) throw std::runtime_error("ELF: not an ARM file");
  const std::uint32_t phoff = le32(b, 28);
  const std::uint16_t phentsize = le16(b, 42), phnum = le16(b, 44);
  std::vector<Segment> out;
  for (std::uint16_t i = 0; i < phnum; ++i) {
    const std::size_t ph = phoff + static_cast<std::size_t>(i) * phentsize;
    if (le32(b, ph) != 1) continue;  // PT_LOAD
    const std::uint32_t offset = le32(b, ph + 4), paddr = le32(b, ph + 12), filesz = le32(b, ph + 16);
    if (filesz == 0) continue;
    if (static_cast<std::size_t>(offset) + filesz > b.size()) throw std::runtime_error("ELF: segment beyond the file");
    out.push_back(Segment{paddr, std::vector<std::uint8_t>(b.begin() + offset, b.begin() + offset + filesz)});
  }
  if (out.empty()) throw std::runtime_error("ELF: no loadable segment");
  return out;
}

std::vector<Segment> read_hex(const std::string& text) {
  std::vector<Segment> out;
  std::uint32_t upper = 0;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool ended = false;
  auto fail = [&](const std::string& what) { throw std::runtime_error("HEX line " + std::to_string(lineno) + ": " + what); };
  while (std::getline(in, line)) {
    ++lineno;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    if (line[0] != ':' || line.size() < 11 || line.size() % 2 == 0) fail("malformed record");
    std::vector<std::uint8_t> rec;
    for (std::size_t i = 1; i < line.size(); ++i)
      if (!std::isxdigit(static_cast<unsigned char>(line[i]))) fail(std::string(1, line[i]).append(" is not a hex digit"));
    for (std::size_t i = 1; i < line.size(); i += 2) rec.push_back(static_cast<std::uint8_t>(std::stoul(line.substr(i, 2), nullptr, 16)));
    std::uint8_t sum = 0;
    for (std::uint8_t v : rec) sum = static_cast<std::uint8_t>(sum + v);
    if (sum != 0) fail("bad checksum");
    const std::size_t len = rec[0];
    if (rec.size() != len + 5) fail("bad length");
    const std::uint32_t addr = static_cast<std::uint32_t>(rec[1] << 8 | rec[2]);
    const std::uint8_t type = rec[3];
    const std::uint8_t* data = &rec[4];
    if ((type == 2 || type == 4) && len != 2) fail("an address record holds 2 bytes, not " + std::to_string(len));
    switch (type) {
      case 0: {
        const std::uint32_t a = upper + addr;
        if (!out.empty() && out.back().addr + out.back().data.size() == a) out.back().data.insert(out.back().data.end(), data, data + len);
        else out.push_back(Segment{a, std::vector<std::uint8_t>(data, data + len)});
        break;
      }
      case 1: ended = true; break;
      case 2: upper = static_cast<std::uint32_t>((data[0] << 8 | data[1]) << 4); break;
      case 4: upper = static_cast<std::uint32_t>(data[0] << 8 | data[1]) << 16; break;
      case 3: case 5: break;  // start addresses: the reset vector decides
      default: fail("unknown record type");
    }
    if (ended) break;
  }
  if (!ended) throw std::runtime_error("HEX: no end-of-file record");
  return out;
}

std::vector<Segment> read_image(const std::filesystem::path& file, std::uint32_t bin_base) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string ext = file.extension().string();
  try {
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "\x7F" "ELF", 4) == 0) return read_elf(bytes);
    if (ext == ".hex" || ext == ".ihex" || (!bytes.empty() && bytes[0] == ':'))
      return read_hex(std::string(bytes.begin(), bytes.end()));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
  if (bytes.empty()) throw std::runtime_error(file.string() + " is empty");
  return {Segment{bin_base, std::move(bytes)}};
}

}  // namespace bluepill
