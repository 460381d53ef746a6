// Drives `tandem chat` through a pseudo-terminal as a person would: /help and /clear are
// answered by tandem and never reach the model, Ctrl-C during a reply stops it and keeps the
// conversation, and Ctrl-C twice at the prompt leaves. Every wait is bounded; the child is
// killed on any failure. Needs the tiny golden model (skips without it).
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

class PtyChild {
 public:
  explicit PtyChild(const std::vector<std::string>& argv) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      setenv("TERM", "xterm", 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~PtyChild() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0; }

  void write_text(const std::string& s) { ASSERT_EQ(::write(fd_, s.data(), s.size()), ssize_t(s.size())); }

  // Reads until `what` appears after position `from` of everything read so far, or the time is up.
  bool wait_for(const std::string& what, double seconds, size_t from = 0) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      if (out_.find(what, from) != std::string::npos) return true;
      if (Clock::now() >= end) return false;
      pump(50);
    }
  }
  // Reads whatever comes within the time.
  void drain(double seconds) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) pump(20);
  }
  // Waits for the child to exit; its exit status, or -1 when it did not.
  int wait_exit(double seconds) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      pump(20);
    }
    return -1;
  }
  const std::string& output() const { return out_; }
  size_t size() const { return out_.size(); }

 private:
  void pump(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) > 0) {
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) out_.append(buf, size_t(n));
    }
  }
  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string out_;
};

TEST(ChatPty, CommandsStayLocalAndCtrlCKeepsTheConversation) {
  const std::string model = std::string(TANDEM_SHARED_DIR) + "/golden/tiny-v2-q4km.gguf";
  const std::string tandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "no " << model;
  ASSERT_TRUE(std::filesystem::exists(tandem)) << tandem;
  const std::string saved = testing::TempDir() + "/chat_pty_test.json";
  std::filesystem::remove(saved);

  // A long reply limit, so Ctrl-C comes while the model is still talking; the model's own
  // template comes from a file (the golden GGUF carries none).
  PtyChild chat({tandem, "chat", "-m", model, "--cpu-only", "-t", "2", "-n", "3000", "-c", "4096", "--temp", "0",
                 "--chat-template-file", std::string(TANDEM_CHAT_TEMPLATES_DIR) + "/deepseek-v2.jinja"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("Type a message", 60)) << chat.output();
  ASSERT_TRUE(chat.wait_for("> ", 10)) << chat.output();
  EXPECT_NE(chat.output().find("Jinja template from"), std::string::npos) << chat.output();

  // /help and /clear: answered locally; no reply statistics means the model was not asked.
  size_t mark = chat.size();
  chat.write_text("/help\r");
  ASSERT_TRUE(chat.wait_for("never sent to the model", 10, mark)) << chat.output();
  chat.write_text("/clear\r");
  ASSERT_TRUE(chat.wait_for("[conversation cleared]", 10, mark)) << chat.output();
#ifdef TANDEM_HAVE_LIBEDIT
  // History: up arrow brings /clear back.
  mark = chat.size();
  chat.write_text("\x1b[A\r");
  ASSERT_TRUE(chat.wait_for("[conversation cleared]", 10, mark)) << chat.output().substr(mark);
#endif
  chat.drain(0.3);
  EXPECT_EQ(chat.output().find("eval count"), std::string::npos) << chat.output();

  // Ctrl-C during a reply stops it; the session carries on with the partial reply kept.
  mark = chat.size();
  chat.write_text("hello\r");
  ASSERT_TRUE(chat.wait_for("hello", 10, mark));
  const size_t reply_from = chat.size();
  // Some reply text streams first (slow under sanitizers on a loaded machine: wait for it,
  // bounded; the reply is 3000 tokens long, so it is still running when Ctrl-C comes).
  for (int i = 0; i < 300 && chat.size() <= reply_from; ++i) chat.drain(0.1);
  EXPECT_GT(chat.size(), reply_from) << "no reply text within 30 s";
  chat.write_text("\x03");
  ASSERT_TRUE(chat.wait_for("[interrupted", 20, mark)) << chat.output().substr(mark);
  ASSERT_TRUE(chat.wait_for("stop:                 interrupted", 10, mark)) << chat.output().substr(mark);
  ASSERT_TRUE(chat.wait_for("> ", 10, chat.output().find("stop:", mark))) << chat.output().substr(mark);

  mark = chat.size();
#ifdef TANDEM_HAVE_LIBEDIT
  // Line editing: "/sve PATH", Ctrl-A to the line start, right arrow twice, insert "a".
  chat.write_text("/sve " + saved + "\x01\x1b[C\x1b[Ca\r");
#else
  chat.write_text("/save " + saved + "\r");
#endif
  ASSERT_TRUE(chat.wait_for("[saved 2 messages", 10, mark)) << chat.output().substr(mark);
  std::ifstream in(saved);
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["messages"].size(), 2u);
  EXPECT_EQ(j["messages"][0]["content"], "hello");
  EXPECT_EQ(j["messages"][1]["role"], "assistant");
  EXPECT_FALSE(j["messages"][1]["content"].get<std::string>().empty());

  // Ctrl-C at the prompt warns once; the second one leaves, cleanly.
  mark = chat.size();
  chat.write_text("\x03");
  ASSERT_TRUE(chat.wait_for("Ctrl-C again", 10, mark)) << chat.output().substr(mark);
  chat.drain(0.2);
  chat.write_text("\x03");
  EXPECT_EQ(chat.wait_exit(15), 0) << chat.output().substr(mark);
  std::filesystem::remove(saved);
}

struct OneShot {
  int status;
  std::string output;
};

OneShot run_once(const std::vector<std::string>& argv) {
  PtyChild child(argv);
  OneShot r{-1, ""};
  if (!child.started()) return r;
  r.status = child.wait_exit(60);
  r.output = child.output();
  return r;
}

TEST(ChatPty, LlamaCppAndKTransformersFlags) {
  const std::string model = std::string(TANDEM_SHARED_DIR) + "/golden/tiny-v2-q4km.gguf";
  const std::string tandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "no " << model;
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(testing::TempDir()) / "chat_pty_flags";
  fs::remove_all(dir);
  fs::create_directories(dir / "one");
  fs::create_directories(dir / "two");
  fs::create_directories(dir / "split");
  fs::create_symlink(model, dir / "one" / "m.gguf");
  fs::create_symlink(model, dir / "two" / "a.gguf");
  fs::create_symlink(model, dir / "two" / "b.gguf");
  fs::create_symlink(model, dir / "split" / "m-00001-of-00002.gguf");
  fs::create_symlink(model, dir / "split" / "m-00002-of-00002.gguf");
  { std::ofstream(dir / "prompt.txt") << "hello"; }

  // llama.cpp's short flags: -m -p -n -c -t --temp.
  OneShot r = run_once({tandem, "chat", "-m", model, "-p", "hi", "-n", "3", "-c", "512", "-t", "2", "--temp", "0",
                        "--cpu-only"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("eval count:           3 token(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("context 512 tokens"), std::string::npos) << r.output;

  // KTransformers' local_chat: a folder for the model, --prompt_file, --max_new_tokens,
  // --cpu_infer, --force_think (the reply starts in reasoning: dimmed on a terminal), and
  // flags with no meaning here named in one warning.
  r = run_once({tandem, "local_chat", "--model_path", (dir / "one").string(), "--gguf_path", (dir / "one").string(),
                "--prompt_file", (dir / "prompt.txt").string(), "--max_new_tokens", "4", "--cpu_infer", "2",
                "--force_think", "true", "--use_cuda_graph", "True", "--mode", "normal", "--temp", "0", "--cpu-only"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ignored: --use_cuda_graph, --mode"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("eval count:           4 token(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\x1b[2m"), std::string::npos) << "reasoning not dimmed: " << r.output;

  // A folder with several models is an error that lists them; a split model's first shard is taken.
  r = run_once({tandem, "chat", "--gguf_path", (dir / "two").string(), "-p", "hi"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("a.gguf"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("b.gguf"), std::string::npos) << r.output;
  r = run_once({tandem, "chat", "--gguf_path", (dir / "split").string(), "-p", "hi", "-n", "1", "--cpu-only"});
  EXPECT_EQ(r.output.find("several"), std::string::npos) << r.output;

  // No model at all says how to give one.
  r = run_once({tandem, "chat", "-p", "hi"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("-m"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

}  // namespace
