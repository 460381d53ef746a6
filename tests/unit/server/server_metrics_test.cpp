#include "runtime/server/server_metrics.h"

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

TEST(ServerMetrics, PrometheusText) {
  ServerMetrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 503);
  m.add_generation(10, 5, 0.5);
  m.add_generation(20, 7, 1.5);
  m.add_time_to_first_token(0.25);
  const std::string t = m.render(3, 1);
  EXPECT_NE(t.find("# TYPE tandem_requests_total counter\n"), std::string::npos) << t;
  EXPECT_NE(t.find("tandem_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("tandem_requests_total{endpoint=\"/v1/chat/completions\",status=\"503\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_queue_depth 3\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_running_requests 1\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_prompt_tokens_total 30\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_generated_tokens_total 12\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_generation_seconds_sum 2\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_generation_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(t.find("tandem_time_to_first_token_seconds_count 1\n"), std::string::npos);
  EXPECT_DOUBLE_EQ(m.mean_generation_seconds(), 1.0);
  EXPECT_GT(process_resident_bytes(), 0);
  EXPECT_EQ(t.back(), '\n');
}

}  // namespace
}  // namespace tandem::server
