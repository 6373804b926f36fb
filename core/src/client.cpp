#include "ota/client.hpp"

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"

namespace ota {

UpdateClient::UpdateClient(const FlashMap& map, Link& link, const DeviceInfo& info)
    : map_(map), link_(link), info_(info), flags_(map), journal_(map) {}

void UpdateClient::boot() { send_hello(); }

void UpdateClient::receive(const std::uint8_t* bytes, std::size_t len) {
  while (len--) receive(*bytes++);
}

void UpdateClient::receive(std::uint8_t byte) {
  switch (decoder_.feed(byte)) {
    case FrameDecoder::Event::frame: on_frame(decoder_.frame()); break;
    case FrameDecoder::Event::error:
      if (active_) send_nak(Status::bad_frame);  // ask for a re-send at once, not after a timeout
      break;
    case FrameDecoder::Event::none: break;
  }
}

void UpdateClient::on_frame(const Frame& f) {
  // A frame of the device's own direction (0x80-0xFF) is its own echo (a half-duplex or RS-485
  // line that hears itself, a modem with echo on) or another device on a shared line: no server
  // sent it. Answered, each echoed answer would be answered again, for ever.
  if (f.type & 0x80) return;
  ++frames_;
  const auto type = static_cast<MsgType>(f.type);
  // RECOVER, when already running: say who we are, to the first of a run of RECOVERs and then to
  // one in kRecoverAnswerEvery. A server sends them every 10 ms until someone presses reset, and
  // a HELLO per RECOVER (about 46 bytes: 48 ms at 9600 baud) would keep the line and the main loop busy
  // for all that time.
  if (type != MsgType::recover) recovers_ = 0;
  else if (recovers_++ % kRecoverAnswerEvery != 0) return;
  switch (type) {
    case MsgType::hello_request:
    case MsgType::recover:
      send_hello();
      return;
    case MsgType::start: {
      Start s;
      if (decode(f, s)) on_start(s);
      else send_start_reply(Status::bad_params);
      return;
    }
    case MsgType::data:
      if (f.len < 3) send_nak(Status::bad_length);
      else on_data(f.payload, f.len);
      return;
    case MsgType::abort:
      active_ = false;
      send_hello();
      return;
    case MsgType::report_ack:
      if (flags_.read() == Flag::success) flags_.clear();
      send_hello();
      return;
    default: send_nak(Status::unknown_message); return;
  }
}

void UpdateClient::on_start(const Start& s) {
  const Layout& l = map_.layout;
  const JournalRecord rec{s.image_size, s.image_crc, s.image_version, s.packet_size,
                          s.packet_count};
  const std::uint32_t write_size = map_.device(l.staging).geometry().write_size;
  Status st = Status::ok;
  // (OTA-START that this client did not write is a failed install: START is taken.)
  if (reset_requested_ || (active_ && !(rec == session_)))
    st = Status::busy;
  else if (s.image_size > l.image_limit)
    st = Status::too_large;
  else if (s.image_size < 8 || s.packet_size < kMinChunk || s.packet_size > kMaxChunk ||
           l.staging_unit % s.packet_size != 0 || s.packet_size % write_size != 0 ||
           s.packet_count != packet_count_for(s.image_size, s.packet_size))
    st = Status::bad_params;
  else if (!vector_table_sane(l, s.initial_sp, s.reset_vector, s.image_size))
    st = Status::invalid_image;
  if (st != Status::ok) {
    send_start_reply(st);
    return;
  }

  std::uint32_t next = 0;
  JournalRecord old;
  // The same image was being received: resume after the last unit marked done. The units are
  // bytes, so the packet size may differ from the one the journal was begun with (a server that
  // lowered --packet on a poor link loses nothing). Another image is begun in flash only once
  // its packet 0 matches START (on_data): a refused one erases nothing. A journal that cannot be
  // read (no W25Q) means nothing can be stored: refused now.
  const Found found = journal_.find(old);
  if (found == Found::unknown) {
    send_start_reply(Status::flash_error);
    return;
  }
  begun_ = found == Found::yes && old.same_image(rec) && !journal_.installed();
  if (begun_) next = journal_.resume_index(rec);
  session_ = rec;
  initial_sp_ = s.initial_sp;
  reset_vector_ = s.reset_vector;
  next_ = static_cast<std::uint16_t>(next);
  active_ = true;
  finished_ = false;
  nak_sent_ = false;
  send_start_reply(Status::ok);
  if (next_ == session_.packet_count) finish_download();
}

std::uint32_t UpdateClient::packet_len(std::uint32_t index) const {
  const std::uint32_t off = index * session_.packet_size;
  const std::uint32_t left = session_.image_size - off;
  return left < session_.packet_size ? left : session_.packet_size;
}

void UpdateClient::on_data(const std::uint8_t* p, std::size_t len) {
  if (!active_) {
    if (finished_) send_result();  // the server missed RESULT: say it again
    else send_nak(Status::no_session);
    return;
  }
  const std::uint16_t index = get_u16(p);
  const std::uint8_t* chunk = p + 2;
  const std::uint32_t n = static_cast<std::uint32_t>(len - 2);
  if (index < next_) {  // a duplicate: the server missed our ACK
    send_ack();
    return;
  }
  if (index > next_) {  // a gap: one NAK, then silence until `next_` arrives
    send_nak(Status::out_of_order);
    return;
  }
  if (n != packet_len(index)) {
    send_nak(Status::bad_length);
    return;
  }
  if (index == 0 && (get_u32(chunk) != initial_sp_ || get_u32(chunk + 4) != reset_vector_)) {
    active_ = false;  // START announced other words than the image carries
    send_nak(Status::invalid_image);
    return;
  }
  // A new image, its packet 0 checked: the journal is begun for it. (In recovery after a failed
  // install, it replaces the staged image. The flag goes first, so that a reset during the new
  // download does not make the bootloader refuse, and wipe, the journal it resumes from.)
  if (!begun_) {
    const Flag f = flags_.read();  // (unreadable: cleared too, it may say OTA-START)
    if (((f == Flag::start || f == Flag::unknown) && !flags_.clear()) || !journal_.begin(session_)) {
      send_nak(Status::flash_error);
      return;
    }
    begun_ = true;
  }
  if (!store(index, chunk, n)) {
    // Re-send from the start of the unit: it is erased again before its first packet.
    const std::uint32_t per_unit = map_.layout.staging_unit / session_.packet_size;
    next_ = static_cast<std::uint16_t>(index / per_unit * per_unit);
    send_nak(Status::flash_error);
    return;
  }
  nak_sent_ = false;
  ++next_;
  if (next_ == session_.packet_count) finish_download();
  else send_ack();
}

bool UpdateClient::store(std::uint32_t index, const std::uint8_t* p, std::uint32_t len) {
  const Layout& l = map_.layout;
  Flash& dev = map_.device(l.staging);
  const std::uint32_t off = index * session_.packet_size;
  const std::uint32_t addr = l.staging.base + off;
  const std::uint32_t unit = off / l.staging_unit;
  // A unit marked done holds its verified packets: it is never erased again in this download,
  // even when the server goes back into it (a marker write that took but reported a failure),
  // since a resume would skip it.
  const Found done = journal_.unit_mark(unit);
  if (done != Found::no) return done == Found::yes;  // unknown: fail, and erase nothing
  if (off % l.staging_unit == 0 && !dev.erase(addr)) return false;

  if (!dev.write(addr, p, len)) return false;  // verified by the port; a short tail is padded
  const bool unit_full = (off + len) % l.staging_unit == 0;
  const bool last = index + 1 == session_.packet_count;
  return !(unit_full || last) || journal_.mark_unit_done(unit);
}

void UpdateClient::finish_download() {
  const Layout& l = map_.layout;
  active_ = false;
  finished_ = true;
  std::uint32_t crc = 0;
  // A read error is no verdict (flash_error): the download is kept, and checked again when offered.
  Status s = !crc32_of(map_.device(l.staging), l.staging.base, session_.image_size, crc) ? Status::flash_error
             : crc != session_.image_crc                                                 ? Status::crc_mismatch
                                                                                         : layout_check();
  if (s == Status::crc_mismatch || s == Status::invalid_image) {
    // The stored image is wrong as a whole, or not for this device: forget it, so that the next
    // offer starts over.
    journal_.clear();
  } else if (s == Status::ok && !flags_.set(Flag::start) && flags_.read() != Flag::start) {
    // (A write that took although the port reported a failure, say a read-back that glitched,
    // counts: the flag is what the bootloader acts on, and it checks the image again anyway.)
    s = Status::flash_error;
  }
  result_ = Result{s, crc};
  reset_requested_ = s == Status::ok;
  send_result();
}

// The vector table cannot tell the layouts apart (the application starts at 0x08002000 in both),
// but the image's app info (OTA_APP_INFO, right after the vector table) can: an image built for
// the other layout would run here on the other layout's flash map, stage its next update where
// this bootloader never looks, and never report. It also names the product: another product's
// application is refused by an application that names its own (not by the bootloader, so that
// `ota push --recover` can put any product on the board), and the link's rate: an image built for
// another OTA_USART1_BAUD would talk at a rate its adapter or modem does not, out of reach (the
// bootloader refuses it too: its application would be reached only by a reset into recovery).
// Looked for in the image's first kAppInfoWindow
// bytes, kScanStep at a time with a record's length of overlap; an image without it passes.
// invalid_image: built for the other layout or rate; flash_error: staging could not be read.
Status UpdateClient::layout_check() const {
  constexpr std::uint32_t kScanStep = 64;
  const Layout& l = map_.layout;
  std::uint8_t buf[kScanStep + AppInfo::kSize];
  for (std::uint32_t off = 0; off < kAppInfoWindow - AppInfo::kSize && off < session_.image_size; off += kScanStep) {
    const std::uint32_t left = session_.image_size - off;
    const std::uint32_t n = left < sizeof buf ? left : static_cast<std::uint32_t>(sizeof buf);
    if (!map_.device(l.staging).read(l.staging.base + off, buf, n)) return Status::flash_error;
    // A record that starts past the step may not be whole here (its rate): the next piece has it
    // (after the last, none counts: it would start past the first 512 bytes).
    if (const std::optional<AppInfo> info = app_info_in(buf, n, n == sizeof buf ? kScanStep : n))
      return info->layout != static_cast<std::uint32_t>(l.id) ||
                     (info->link_baud && info_.link_baud && info->link_baud != info_.link_baud) ||
                     (info_.role == Role::application && !products_match(info->product, info_.product))
                 ? Status::invalid_image
                 : Status::ok;
  }
  return Status::ok;
}

// Every frame goes out behind a 0x00 of its own: the link is often the application's console too,
// and a text line it wrote without ending it in 0x00 would otherwise run into this frame and take
// it down with it (the server would drop both as one bad frame, see docs/protocol.md 1.3).
void UpdateClient::send(MsgType t, const std::uint8_t* payload, std::size_t len) {
  std::uint8_t out[1 + encoded_size_max(Hello::kSize)];
  out[0] = kFrameDelimiter;
  const std::size_t n = encode_frame(static_cast<std::uint8_t>(t), payload, len, out + 1, sizeof out - 1);
  if (n) link_.send(out, 1 + n);
}

void UpdateClient::send_hello() {
  const Flag f = flags_.read();
  Hello h{.layout = map_.layout.id,
          .role = info_.role,
          .window = info_.window,
          .app_version = info_.app_version,
          .staging_capacity = map_.layout.image_limit,
          .report = f == Flag::success ? Report::upgrade_ok
                    : f != Flag::start ? Report::none
                    : install_failed() ? Report::install_failed
                                       : Report::download_ok,
          .product = info_.product};
  for (int i = 0; i < 12; ++i) h.uid[i] = info_.uid[i];
  JournalRecord rec;
  if (active_) {
    h.session_crc = session_.image_crc;
    h.session_next = next_;
  } else if (journal_.read(rec) && !journal_.installed() && rec.packet_size != 0) {
    h.session_crc = rec.image_crc;
    h.session_next = static_cast<std::uint16_t>(journal_.resume_index(rec));
  }
  send(MsgType::hello, reinterpret_cast<const std::uint8_t*>(&h), Hello::kSize);  // = encode(h)
}

// START_REPLY and DATA_NAK carry the same fields: a status and the next index wanted.
void UpdateClient::send_status(MsgType t, Status s) {
  std::uint8_t p[StartReply::kSize];
  static_assert(StartReply::kSize == Nak::kSize);
  encode(StartReply{s, next_}, p);  // = encode(Nak{s, next_}, p)
  send(t, p, sizeof p);
}

void UpdateClient::send_start_reply(Status s) { send_status(MsgType::start_reply, s); }

void UpdateClient::send_ack() {
  std::uint8_t p[2];
  put_u16(p, next_);
  send(MsgType::data_ack, p, sizeof p);
}

void UpdateClient::send_nak(Status s) {
  if (s == Status::out_of_order || s == Status::bad_frame) {
    if (nak_sent_) return;
    nak_sent_ = true;
  } else if (s == Status::flash_error) {
    nak_sent_ = true;  // it opens a gap too (back to the unit's start): the frames in flight are
  }                    // dropped quietly, or the server would go back once for each
  send_status(MsgType::data_nak, s);
}

void UpdateClient::send_result() {
  std::uint8_t p[Result::kSize];
  encode(result_, p);
  send(MsgType::result, p, sizeof p);
}

}  // namespace ota
