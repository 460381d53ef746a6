// The batch scheduler over a fake BatchedLm (fake_batched_lm.h): sequences share forwards,
// prompt chunks interleave with decode tokens within the token budget, the prefix cache picks
// slots, cancellation frees them, and batching leaves every greedy reply as it is alone.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <exception>
#include <stdexcept>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine/model_loader.h"
#include "runtime/server/api_server.h"
#include "runtime/server/batch_generator.h"
#include "runtime/server/prefix_slot_choice.h"
#include "runtime/server/request_error.h"
#include "tests/unit/server/fake_batched_lm.h"
#include "tests/unit/server/running_server.h"
#include "tests/unit/server/test_http_client.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using testing::FakeBatchedLm;

constexpr int64_t kContext = 256;

class BatchGeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = (fs::temp_directory_path() / ("tandem_batch_generator_test_" + std::to_string(getpid()) + ".gguf")).string();
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v3");
    o.types.set_all(GgmlType::Q8_0);
    o.block_pool = 0;
    o.seed = 5;
    modelgen::generate_deepseek2(o, path_);
    ModelLoadOptions lo;
    lo.path = ComputePath::Reference;
    model_ = std::make_unique<LoadedModel>(load_model(path_, lo));
  }
  static void TearDownTestSuite() {
    model_.reset();
    fs::remove(path_);
  }

  static ChatTemplate chat_template() {
    std::string warning;
    return ChatTemplate::for_model(*model_->file, *model_->tokenizer, "", &warning);
  }
  static std::unique_ptr<BatchGenerator> make(FakeBatchedLm& lm, int64_t batch_tokens = 512) {
    GeneratorOptions go;
    go.context_limit = kContext;
    BatchOptions bo;
    bo.batch_tokens = batch_tokens;
    return std::make_unique<BatchGenerator>(lm, *model_->tokenizer, chat_template(), go, bo);
  }
  static int64_t vocab() { return model_->lm->n_vocab(); }

  // A greedy text completion of token ids.
  static CompletionRequest request(const std::vector<int64_t>& ids, int64_t max_tokens) {
    CompletionRequest r;
    r.kind = RequestKind::Text;
    r.prompt = ids;
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0.0f;
    return r;
  }
  static std::vector<int64_t> ids(int from, int n) {
    std::vector<int64_t> v;
    for (int i = 0; i < n; ++i) v.push_back(40 + (from + i * 7) % 40);
    return v;
  }
  // What the request gives alone, on a fresh one-slot scheduler.
  static GenerationOutcome alone(const CompletionRequest& r) {
    FakeBatchedLm lm(1, kContext, vocab());
    auto g = make(lm);
    return g->generate(g->prepare(r), r, {});
  }

  static inline std::string path_;
  static inline std::unique_ptr<LoadedModel> model_;
};

// Runs generate() on its own thread.
struct Job {
  // refuse_after: the sink refuses (client gone) once it got that many pieces (0: never).
  Job(BatchGenerator& g, CompletionRequest req, size_t refuse_after = 0) : request(std::move(req)) {
    prompt = g.prepare(request);
    thread = std::thread([this, &g, refuse_after] {
      out = g.generate(
          prompt, request,
          [this, refuse_after](std::string_view t) {
            streamed += t;
            ++pieces;
            return refuse_after == 0 || pieces < refuse_after;
          },
          [this] {
            const bool g = gone.load();
            if (g) saw_gone = true;
            return g;
          });
    });
  }
  ~Job() {
    if (thread.joinable()) thread.join();
  }
  void join() { thread.join(); }
  CompletionRequest request;
  PreparedPrompt prompt;
  GenerationOutcome out;
  std::string streamed;  // read after join()
  std::atomic<size_t> pieces{0};
  std::atomic<bool> gone{false};
  std::atomic<bool> saw_gone{false};
  std::thread thread;
};

bool wait_until(const std::function<bool()>& f) {
  for (int i = 0; i < 4000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

TEST_F(BatchGeneratorTest, SequencesShareForwardsAndKeepTheirAloneReplies) {
  FakeBatchedLm lm(3, kContext, vocab());
  auto g = make(lm);
  const auto ra = request(ids(1, 5), 12), rb = request(ids(2, 9), 10), rc = request(ids(3, 3), 11);
  lm.hold(true);
  Job a(*g, ra);
  ASSERT_TRUE(lm.wait_forwards(1));  // A's prefill is in the model
  Job b(*g, rb);
  Job c(*g, rc);
  ASSERT_TRUE(wait_until([&] { return g->waiting() == 2; }));
  lm.hold(false);
  a.join();
  b.join();
  c.join();
  size_t widest = 0;
  for (const auto& s : lm.steps()) widest = std::max(widest, s.size());
  EXPECT_EQ(widest, 3u) << "the three sequences never shared a forward";
  EXPECT_EQ(g->stats().max_sequences_in_step, 3);
  for (Job* r : {&a, &b, &c}) {
    const GenerationOutcome solo = alone(r->request);
    EXPECT_EQ(r->out.tokens, solo.tokens);
    EXPECT_EQ(r->out.text, solo.text);
    EXPECT_EQ(r->streamed, r->out.text);
    EXPECT_FALSE(r->out.cancelled);
    EXPECT_EQ(r->out.usage.completion_tokens, *r->request.max_tokens);
  }
  EXPECT_EQ(g->stats().running, 0);
}

TEST_F(BatchGeneratorTest, LongPromptIsPrefilledInChunksBetweenDecodeSteps) {
  FakeBatchedLm lm(2, kContext, vocab());
  constexpr int64_t kBudget = 4;
  auto g = make(lm, kBudget);
  lm.hold(true);
  Job a(*g, request(ids(1, 2), 30));
  ASSERT_TRUE(lm.wait_forwards(1));
  Job b(*g, request(ids(5, 21), 3));
  ASSERT_TRUE(wait_until([&] { return g->waiting() == 1; }));
  lm.hold(false);
  a.join();
  b.join();
  // B's slot is the one A does not hold; its prompt arrives in pieces no larger than the budget
  // left by A's decode token, each next to A's decode token.
  const auto steps = lm.steps();
  int a_slot = steps.at(0).at(0).slot;
  size_t b_fed = 0, shared = 0;
  for (const auto& s : steps) {
    int64_t total = 0;
    for (const auto& c : s) total += int64_t(c.tokens.size());
    EXPECT_LE(total, kBudget);
    for (const auto& c : s)
      if (c.slot != a_slot) {
        if (b_fed < 21 && s.size() == 2) ++shared;
        b_fed += c.tokens.size();
        EXPECT_LE(c.tokens.size(), size_t(kBudget - 1));
      }
  }
  EXPECT_EQ(b_fed, 21u + 2u) << "B's prompt and its first two reply tokens";
  EXPECT_GE(shared, 7u) << "B's prompt chunks did not interleave with A's decode";
  EXPECT_EQ(b.out.tokens, alone(b.request).tokens);
  EXPECT_EQ(a.out.tokens, alone(a.request).tokens);
}

TEST_F(BatchGeneratorTest, PrefixCacheTakesTheLongestSharedPrefix) {
  FakeBatchedLm lm(2, kContext, vocab());
  auto g = make(lm);
  // Two finished conversations sit in the two slots.
  const auto p1 = ids(1, 12), p2 = ids(30, 12);
  Job(*g, request(p1, 4)).join();
  Job(*g, request(p2, 4)).join();
  std::map<int, std::vector<TokenId>> held = {{0, g->slot_tokens(0)}, {1, g->slot_tokens(1)}};
  ASSERT_EQ(held[0].size(), 12u + 3u);  // prompt + the reply tokens fed (the last is not)
  // Shares 8 tokens with p2's slot and none with p1's.
  std::vector<int64_t> q(p2.begin(), p2.begin() + 8);
  q.push_back(5);
  q.push_back(6);
  Job r(*g, request(q, 3));
  r.join();
  EXPECT_EQ(r.out.reused_tokens, 8);
  const int p2_slot = held[0][0] == TokenId(p2[0]) ? 0 : 1;
  EXPECT_EQ(lm.truncates().back(), std::make_pair(p2_slot, int64_t(8)));
  EXPECT_EQ(r.out.tokens, alone(r.request).tokens);

  // Regenerate: the same prompt again feeds only its last token.
  Job again(*g, request(q, 3));
  again.join();
  EXPECT_EQ(again.out.reused_tokens, int64_t(q.size()) - 1);
  EXPECT_EQ(again.out.tokens, r.out.tokens);
  EXPECT_GE(g->stats().reused_prompt_tokens, uint64_t(8 + q.size() - 1));
}

TEST_F(BatchGeneratorTest, EditedLastMessageTruncatesToTheSharedPart) {
  FakeBatchedLm lm(1, kContext, vocab());
  auto g = make(lm);
  std::vector<int64_t> p = ids(3, 20);
  Job(*g, request(p, 5)).join();
  p[17] = (p[17] == 50) ? 51 : 50;  // the tail changed
  Job r(*g, request(p, 5));
  r.join();
  EXPECT_EQ(r.out.reused_tokens, 17);
  EXPECT_EQ(lm.truncates().back(), std::make_pair(0, int64_t(17)));
  EXPECT_EQ(r.out.tokens, alone(r.request).tokens);
}

TEST_F(BatchGeneratorTest, BusySlotPrefixIsCopiedIntoAFreeSlot) {
  FakeBatchedLm lm(2, kContext, vocab());
  auto g = make(lm);
  const auto shared = ids(7, 16);
  lm.hold(true);
  Job a(*g, request(shared, 40));
  ASSERT_TRUE(lm.wait_forwards(1));
  std::vector<int64_t> q = shared;
  q.push_back(44);
  Job b(*g, request(q, 4));
  ASSERT_TRUE(wait_until([&] { return g->waiting() == 1; }));
  lm.hold(false);
  b.join();
  a.join();
  ASSERT_FALSE(lm.copies().empty());
  const auto c = lm.copies().front();
  EXPECT_NE(c.src, c.dst);
  EXPECT_EQ(c.n, 16);
  EXPECT_EQ(b.out.reused_tokens, 16);
  EXPECT_EQ(b.out.tokens, alone(b.request).tokens);
  EXPECT_EQ(a.out.tokens, alone(a.request).tokens);
}

TEST_F(BatchGeneratorTest, CancelledSequenceFreesItsSlotAndAWaitingOneIsNeverPrefilled) {
  FakeBatchedLm lm(1, kContext, vocab());
  auto g = make(lm);
  lm.hold(true);
  Job a(*g, request(ids(1, 4), 200), 1);  // its client leaves at the first piece of text
  ASSERT_TRUE(lm.wait_forwards(1));
  Job b(*g, request(ids(2, 4), 200));  // waits for the only slot, then its client leaves
  ASSERT_TRUE(wait_until([&] { return g->waiting() == 1; }));
  b.gone = true;
  ASSERT_TRUE(wait_until([&] { return b.saw_gone.load(); }));
  lm.allow(1);  // A's prefill runs and samples its first token; the next pass waits
  b.join();
  EXPECT_TRUE(b.out.cancelled);
  EXPECT_FALSE(b.out.prefilled);
  ASSERT_TRUE(wait_until([&] { return a.pieces.load() >= 1; }));
  lm.hold(false);
  a.join();
  EXPECT_TRUE(a.out.cancelled);
  EXPECT_LT(a.out.usage.completion_tokens, 200);
  EXPECT_EQ(g->prefills(), 1u) << "the waiting sequence whose client left was prefilled";
  // The slot is free again.
  Job c(*g, request(ids(3, 4), 3));
  c.join();
  EXPECT_FALSE(c.out.cancelled);
  EXPECT_EQ(c.out.tokens, alone(c.request).tokens);
  EXPECT_EQ(g->prefills(), 2u);
}

TEST_F(BatchGeneratorTest, ModelErrorEndsTheRunningSequencesAndEmptiesTheirSlots) {
  FakeBatchedLm lm(2, kContext, vocab());
  auto g = make(lm);
  Job(*g, request(ids(1, 6), 3)).join();  // slot 0 now caches a conversation
  const size_t before = lm.steps().size();
  lm.hold(true);
  const auto r = request(ids(1, 6), 5);
  const PreparedPrompt p = g->prepare(r);
  std::exception_ptr error;
  std::thread t([&] {
    try {
      g->generate(p, r, {});
    } catch (...) {
      error = std::current_exception();
    }
  });
  ASSERT_TRUE(lm.wait_forwards(before + 1));
  lm.fail_next();
  lm.hold(false);
  t.join();
  ASSERT_TRUE(error);
  EXPECT_THROW(std::rethrow_exception(error), std::runtime_error);
  EXPECT_TRUE(g->slot_tokens(0).empty()) << "the failed sequence's slot keeps a partial cache";
  EXPECT_EQ(g->stats().running, 0);
  // The scheduler goes on.
  Job after(*g, request(ids(2, 6), 3));
  after.join();
  EXPECT_EQ(after.out.tokens, alone(after.request).tokens);
}

TEST_F(BatchGeneratorTest, ContextLimitEndsTheReply) {
  FakeBatchedLm lm(2, 24, vocab());
  auto g = make(lm);
  Job r(*g, request(ids(1, 20), 100));
  r.join();
  EXPECT_EQ(r.out.finish, FinishReason::Length);
  EXPECT_EQ(r.out.usage.completion_tokens, 24 - 20 + 1);
  EXPECT_THROW(g->prepare(request(ids(1, 24), 2)), RequestError);
}

TEST(PrefixSlotChoice, PicksLongestFreeThenCopiesFromBusyThenEvictsLru) {
  const std::vector<TokenId> a = {1, 2, 3, 4}, b = {1, 2, 9}, prompt = {1, 2, 3, 5};
  std::vector<SlotView> v = {{a, false, 1}, {b, false, 2}, {{}, false, 0}};
  SlotChoice c = choose_prefix_slot(v, prompt);
  EXPECT_EQ(c.slot, 0);
  EXPECT_EQ(c.reuse, 3);
  EXPECT_EQ(c.copy_from, -1);
  v[0].busy = true;
  c = choose_prefix_slot(v, prompt);
  EXPECT_EQ(c.slot, 2);  // the never-used slot, with the busy slot's prefix copied in
  EXPECT_EQ(c.copy_from, 0);
  EXPECT_EQ(c.reuse, 3);
  const std::vector<TokenId> other = {7, 7};
  c = choose_prefix_slot(v, other);
  EXPECT_EQ(c.slot, 2);
  EXPECT_EQ(c.reuse, 0);
  v[1].busy = v[2].busy = true;
  EXPECT_EQ(choose_prefix_slot(v, prompt).slot, -1);
  // The whole prompt cached: its last token is fed again.
  std::vector<SlotView> w = {{a, false, 1}};
  EXPECT_EQ(choose_prefix_slot(w, a).reuse, 3);
}

// The HTTP server over the scheduler: requests beyond the running slots and the queue get 503;
// /metrics reports the batch.
TEST_F(BatchGeneratorTest, ServerQueuesBeyondTheSlotsAndReportsTheBatch) {
  FakeBatchedLm lm(2, kContext, vocab());
  auto g = make(lm);
  ApiServerOptions so;
  so.model_name = "fake";
  so.queue = 1;
  std::unique_ptr<ApiServer> server;
  std::thread thread;
  int port = 0;
  testing::start_server(server, thread, port, *g, so);
  ASSERT_TRUE(server->running());
  lm.hold(true);
  const std::string body = R"({"prompt":[41,42,43],"max_tokens":3,"temperature":0})";
  std::vector<std::thread> clients;
  std::vector<int> statuses(3, 0);
  for (int i = 0; i < 3; ++i)
    clients.emplace_back([&, i] { statuses[size_t(i)] = testing::http_request(port, "POST", "/v1/completions", body).status; });
  // Two run (one is in the held forward, one waits for the scheduler), one waits in the line.
  ASSERT_TRUE(wait_until([&] { return server->queue_depth() == 1; }));
  const auto full = testing::http_request(port, "POST", "/v1/completions", body);
  EXPECT_EQ(full.status, 503);
  EXPECT_FALSE(full.header("retry-after").empty());
  const auto m = testing::http_request(port, "GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("tandem_parallel_slots 2\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("tandem_running_requests 2\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("tandem_kv_cache_capacity_tokens " + std::to_string(2 * kContext) + "\n"), std::string::npos);
  lm.hold(false);
  for (auto& t : clients) t.join();
  for (int s : statuses) EXPECT_EQ(s, 200);
  const auto after = testing::http_request(port, "GET", "/metrics");
  EXPECT_NE(after.body.find("tandem_running_sequences 0\n"), std::string::npos) << after.body;
  EXPECT_NE(after.body.find("tandem_prompt_tokens_reused_total "), std::string::npos);
  testing::stop_server(server, thread);
}

}  // namespace
}  // namespace tandem::server
