#include "runtime/chat/terminal_input.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>

#ifdef TANDEM_HAVE_LIBEDIT
#include <histedit.h>
#include <langinfo.h>

#include <clocale>
#include <cstring>
#include <cwchar>
#endif

namespace tandem {
namespace {

std::atomic<bool> g_interrupt{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_sigint(int) { g_interrupt.store(true); }

constexpr int kPollMs = 100;  // how often a blocked read looks at the interrupt flag

// Waits until fd is readable or an interrupt is requested (true: readable).
bool wait_readable(int fd) {
  for (;;) {
    if (g_interrupt.load()) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, kPollMs);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let read() report the error
  }
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

bool interrupt_requested() { return g_interrupt.load(); }
void clear_interrupt() { g_interrupt.store(false); }

#ifdef TANDEM_HAVE_LIBEDIT
struct LineReader::Editor {
  EditLine* el = nullptr;
  History* hist = nullptr;
  std::string prompt;

  static const char* prompt_of(EditLine* el) {
    void* self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    return static_cast<Editor*>(self)->prompt.c_str();
  }

  // One character for libedit: UTF-8 decoded, -1 on Ctrl-C so el_gets returns.
  static int get_char(EditLine*, wchar_t* out) {
    char buf[MB_LEN_MAX];
    size_t n = 0;
    std::mbstate_t state{};
    for (;;) {
      if (!wait_readable(STDIN_FILENO)) return -1;
      char c;
      const ssize_t r = ::read(STDIN_FILENO, &c, 1);
      if (r == 0) return 0;
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
      }
      buf[n++] = c;
      wchar_t w;
      const size_t k = std::mbrtowc(&w, buf, n, &state);
      if (k == size_t(-2) && n < sizeof buf) continue;
      *out = (k == size_t(-1) || k == size_t(-2)) ? wchar_t(static_cast<unsigned char>(buf[0])) : w;
      return 1;
    }
  }

  explicit Editor(std::string p) : prompt(std::move(p)) {
    // libedit decodes input by the locale; tandem's text is UTF-8 whatever the environment says.
    std::setlocale(LC_CTYPE, "");
    if (std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) std::setlocale(LC_CTYPE, "C.UTF-8");
    el = el_init("tandem", stdin, stdout, stderr);
    hist = history_init();
    HistEvent ev;
    history(hist, &ev, H_SETSIZE, 1000);
    history(hist, &ev, H_SETUNIQUE, 1);
    el_set(el, EL_CLIENTDATA, this);
    el_set(el, EL_PROMPT, &Editor::prompt_of);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_HIST, history, hist);
    el_set(el, EL_GETCFN, &Editor::get_char);
    el_source(el, nullptr);  // the user's ~/.editrc, if any
  }
  ~Editor() {
    el_end(el);
    history_end(hist);
  }
};
#else
struct LineReader::Editor {};
#endif

LineReader::LineReader(std::string prompt) : prompt_(std::move(prompt)), terminal_(isatty(STDIN_FILENO) == 1) {
#ifdef TANDEM_HAVE_LIBEDIT
  if (terminal_ && isatty(STDOUT_FILENO) == 1) editor_ = std::make_unique<Editor>(prompt_);
#endif
}

LineReader::~LineReader() = default;

LineReader::Result LineReader::read(std::string& line) {
  line.clear();
#ifdef TANDEM_HAVE_LIBEDIT
  if (editor_) {
    int count = 0;
    const char* text = el_gets(editor_->el, &count);
    if (!text) {
      if (interrupt_requested()) {
        clear_interrupt();
        std::fputs("\n", stdout);
        std::fflush(stdout);
        return Result::Interrupted;
      }
      return Result::End;
    }
    line = text;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) {
      HistEvent ev;
      history(editor_->hist, &ev, H_ENTER, line.c_str());
    }
    return Result::Line;
  }
#endif
  return read_plain(line);
}

LineReader::Result LineReader::read_plain(std::string& line) {
  if (terminal_) {
    std::fputs(prompt_.c_str(), stderr);
    std::fflush(stderr);
  }
  for (;;) {
    const size_t nl = pending_.find('\n');
    if (nl != std::string::npos) {
      line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return Result::Line;
    }
    if (eof_) {
      if (pending_.empty()) return Result::End;
      line = std::move(pending_);
      pending_.clear();
      return Result::Line;
    }
    if (!wait_readable(STDIN_FILENO)) {
      clear_interrupt();
      if (terminal_) std::fputs("\n", stderr);
      return Result::Interrupted;
    }
    char buf[4096];
    const ssize_t r = ::read(STDIN_FILENO, buf, sizeof buf);
    if (r > 0) pending_.append(buf, size_t(r));
    else if (r == 0 || (errno != EINTR && errno != EAGAIN)) eof_ = true;
  }
}

}  // namespace tandem
