// The interactive side of `tandem chat`: Ctrl-C as a request (not a kill) and the user's lines.
//
// install_interrupt_handler() makes SIGINT set a flag that interrupt_requested() reads: the
// chat loop stops a reply on it, and LineReader returns Interrupted. Any thread may take the
// signal (libraries start their own threads), so nothing relies on a system call being
// interrupted: LineReader polls stdin and looks at the flag.
//
// LineReader uses libedit (line editing, history) when stdin is a terminal and tandem was
// built with libedit, and plain reads otherwise.
#pragma once

#include <memory>
#include <string>

namespace tandem {

void install_interrupt_handler();
bool interrupt_requested();
void clear_interrupt();

class LineReader {
 public:
  enum class Result { Line, Interrupted, End };

  // prompt: shown before each line when stdin is a terminal.
  explicit LineReader(std::string prompt);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // One line without its newline. Interrupted: Ctrl-C (the flag is cleared); End: end of input.
  Result read(std::string& line);

  bool terminal() const { return terminal_; }
  bool line_editing() const { return editor_ != nullptr; }

 private:
  struct Editor;
  Result read_plain(std::string& line);

  std::string prompt_;
  bool terminal_;
  std::unique_ptr<Editor> editor_;
  std::string pending_;  // plain reads: bytes after the last returned line
  bool eof_ = false;
};

}  // namespace tandem
