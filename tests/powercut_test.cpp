// The exhaustive power-cut test: for each layout, a complete update (download, flag write, reset,
// install, flag move, report and its acknowledgement) is cut at every flash operation, once
// before it and once torn inside it. After each cut the power comes back: the device must run a
// valid application (exactly v1 or exactly v2, never a mix), and offering the image again must
// end with v2 and an upgrade-OK report. A second campaign cuts twice (the second time during the
// recovery) at random points.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "sim/wire.hpp"
#include "support.hpp"

namespace {

using ota::host::Outcome;
using ota::host::Phase;
using ota::host::Session;

struct Images {
  explicit Images(const ota::Layout& l)
      : v1(sim::make_app_image(l, 1, l.image_limit - 3 * 1024 + 100)),
        v2(sim::make_app_image(l, 2, l.image_limit - 700)) {}
  std::vector<std::uint8_t> v1, v2;
};

ota::host::SessionOptions quick() {
  ota::host::SessionOptions o;
  o.reply_timeout_ms = 50;
  o.hello_interval_ms = 20;
  o.hello_timeout_ms = 500;
  o.reboot_timeout_ms = 500;
  return o;
}

class PowerCut : public ::testing::TestWithParam<const ota::Layout*> {
 protected:
  const ota::Layout& L = *GetParam();
  Images img{L};

  std::unique_ptr<sim::Device> fresh(std::uint64_t seed) {
    auto d = std::make_unique<sim::Device>(L, seed);
    d->factory_install(img.v1);
    d->boot();
    d->take_output();
    d->power().reset_count();
    return d;
  }

  // What must hold whenever the device is up: a valid application, exactly one of the two.
  ::testing::AssertionResult runs_whole_image(sim::Device& d) {
    if (!d.running_application()) return ::testing::AssertionFailure() << "device is not running an application";
    const auto v = d.running_version();
    const auto& want = v == 2u ? img.v2 : img.v1;
    if (v != 1u && v != 2u) return ::testing::AssertionFailure() << "unknown version";
    if (!std::equal(want.begin(), want.end(), d.app_region().begin()))
      return ::testing::AssertionFailure() << "application area is not exactly v" << *v;
    return ::testing::AssertionSuccess();
  }

  // Offers v2 until the server is told it is installed. `reported` says whether an earlier,
  // cut session had already received the upgrade-OK report.
  void offer_until_done(sim::Device& d, bool reported, const std::string& where) {
    Session s(img.v2, 2, quick());
    sim::run_session(d, s);
    const bool ok = s.outcome() == Outcome::upgraded || (reported && s.outcome() == Outcome::up_to_date);
    EXPECT_TRUE(ok) << where << ": " << ota::host::to_string(s.outcome()) << " " << s.detail();
    EXPECT_EQ(d.running_version(), 2u) << where;
    EXPECT_TRUE(std::equal(img.v2.begin(), img.v2.end(), d.app_region().begin())) << where;
  }
};

TEST_P(PowerCut, EveryFlashOperationBeforeAndTorn) {
  // The reference run counts the operations of a complete update.
  auto ref = fresh(1);
  Session s(img.v2, 2, quick());
  sim::run_session(*ref, s);
  ASSERT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  const std::uint64_t ops = ref->power().count();
  ASSERT_GT(ops, 100u);

  std::uint64_t v1_after = 0, v2_after = 0;
  for (std::uint64_t k = 0; k < ops; ++k) {
    for (sim::CutMode mode : {sim::CutMode::before, sim::CutMode::torn}) {
      const std::string where = std::string(L.name) + " cut " +
                                (mode == sim::CutMode::before ? "before" : "inside") + " op " + std::to_string(k);
      auto d = fresh(k * 2 + (mode == sim::CutMode::torn));
      d->power().plan_cut(k, mode);
      Session first(img.v2, 2, quick());
      sim::run_session(*d, first);
      ASSERT_TRUE(d->dead()) << where << ": the cut did not happen";
      const bool reported = first.phase() == Phase::report_ack || first.outcome() == Outcome::upgraded;
      d->power_cycle();
      ASSERT_TRUE(runs_whole_image(*d)) << where;
      ++(d->running_version() == 2u ? v2_after : v1_after);
      d->take_output();
      offer_until_done(*d, reported, where);
      ASSERT_EQ(d->violations(), 0u) << where << ": " << d->last_violation();
    }
  }
  std::printf("[ power-cut ] %s layout: %llu flash operations in an update, %llu cut points (before and "
              "inside each): %llu then ran v1, %llu v2\n",
              L.name, static_cast<unsigned long long>(ops), static_cast<unsigned long long>(v1_after + v2_after),
              static_cast<unsigned long long>(v1_after), static_cast<unsigned long long>(v2_after));
  // Cuts before the install leave v1, cuts after it v2: both sides of it were reached.
  EXPECT_GT(v1_after, 0u);
  EXPECT_GT(v2_after, 0u);
}

TEST_P(PowerCut, TwoCutsAtRandomPoints) {
  auto ref = fresh(1);
  Session s(img.v2, 2, quick());
  sim::run_session(*ref, s);
  const std::uint64_t ops = ref->power().count();
  std::mt19937_64 rng(99);
  for (int i = 0; i < 150; ++i) {
    const std::string where = std::string(L.name) + " double cut #" + std::to_string(i);
    auto d = fresh(1000 + static_cast<std::uint64_t>(i));
    d->power().plan_cut(rng() % ops, rng() % 2 ? sim::CutMode::torn : sim::CutMode::before);
    Session first(img.v2, 2, quick());
    sim::run_session(*d, first);
    bool reported = first.phase() == Phase::report_ack || first.outcome() == Outcome::upgraded;
    ASSERT_TRUE(d->dead()) << where;
    // Second cut: within the boot (install) or the second session.
    d->power().reset_count();
    d->power().power_on();
    d->power().plan_cut(rng() % (ops / 2 + 1), rng() % 2 ? sim::CutMode::torn : sim::CutMode::before);
    d->boot();
    if (!d->dead()) {
      Session second(img.v2, 2, quick());
      sim::run_session(*d, second);
      reported |= second.phase() == Phase::report_ack || second.outcome() == Outcome::upgraded;
    }
    d->power().cancel_cut();
    d->power_cycle();
    ASSERT_TRUE(runs_whole_image(*d)) << where;
    d->take_output();
    offer_until_done(*d, reported, where);
    ASSERT_EQ(d->violations(), 0u) << where << ": " << d->last_violation();
  }
}

// A cut right before the application clears "OTA-SUCCESS" (the REPORT_ACK of the first session
// never took effect) leaves v2's upgrade report pending. The operator then pushes a rebuilt image
// of the same version with --force: the server clears the old report and sends the image (it
// called the push upgraded without sending anything).
TEST_P(PowerCut, AForcedPushOverAReportLeftByACutIsNotUpgradedWithoutBeingSent) {
  auto ref = fresh(1);
  Session s(img.v2, 2, quick());
  sim::run_session(*ref, s);
  ASSERT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  const std::uint64_t ops = ref->power().count();  // the last one: the flag clear of REPORT_ACK

  auto d = fresh(7);
  d->power().plan_cut(ops - 1, sim::CutMode::before);
  Session first(img.v2, 2, quick());
  sim::run_session(*d, first);
  ASSERT_TRUE(d->dead());
  d->power_cycle();
  ASSERT_EQ(d->running_version(), 2u);
  d->take_output();

  // v2 rebuilt (a hot fix, same version number), pushed with --force.
  const auto v2b = sim::make_app_image(L, 2, L.image_limit - 1500);
  ASSERT_NE(v2b, img.v2);
  auto o = quick();
  o.force = true;
  Session forced(v2b, 2, o);
  sim::run_session(*d, forced);
  EXPECT_EQ(forced.outcome(), Outcome::upgraded) << forced.detail();
  EXPECT_TRUE(std::equal(v2b.begin(), v2b.end(), d->app_region().begin()))
      << "the device still runs the old v2 build: " << forced.detail();
}

INSTANTIATE_TEST_SUITE_P(Layouts, PowerCut,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

}  // namespace
