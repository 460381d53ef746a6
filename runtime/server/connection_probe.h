// Tells whether the client of an HTTP request has hung up, so a generation nobody waits for
// stops. cpp-httplib 0.11 (Debian 12) gives handlers no access to the connection, so the probe
// finds the connection's socket by its address pair (the request's local port and the
// client's address and port) and polls it for a hang-up without reading anything.
#pragma once

#include <string>

namespace tandem::server {

class ConnectionProbe {
 public:
  ConnectionProbe(const std::string& remote_addr, int remote_port, int local_port);

  bool found() const { return fd_ >= 0; }
  // True once the peer closed or reset the connection. False while it is open, and always when
  // the socket was not found (the generation then runs to its end).
  bool closed() const;

 private:
  bool is_ours(int fd) const;

  std::string remote_addr_;
  int remote_port_;
  int local_port_;
  int fd_ = -1;
};

}  // namespace tandem::server
