#include "runtime/server/connection_probe.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string_view>

namespace tandem::server {
namespace {

// Port and numeric address of a socket address; IPv4-mapped IPv6 addresses read as IPv4.
bool port_and_address(const sockaddr_storage& ss, int& port, std::string& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    port = ntohs(a.sin_port);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    port = ntohs(a.sin6_port);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
  } else {
    return false;
  }
  addr = buf;
  if (addr.starts_with("::ffff:") && addr.find('.') != std::string::npos) addr.erase(0, 7);
  return true;
}

std::string normalised(std::string addr) {
  if (addr.starts_with("::ffff:") && addr.find('.') != std::string::npos) addr.erase(0, 7);
  return addr;
}

}  // namespace

ConnectionProbe::ConnectionProbe(const std::string& remote_addr, int remote_port, int local_port)
    : remote_addr_(normalised(remote_addr)), remote_port_(remote_port), local_port_(local_port) {
  if (remote_port_ <= 0 || local_port_ <= 0) return;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd < 0 || fd == dirfd(dir)) continue;
    if (is_ours(int(fd))) {
      fd_ = int(fd);
      break;
    }
  }
  closedir(dir);
}

bool ConnectionProbe::is_ours(int fd) const {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage local{}, peer{};
  socklen_t ll = sizeof local, pl = sizeof peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) return false;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) return false;
  int lport = 0, pport = 0;
  std::string laddr, paddr;
  if (!port_and_address(local, lport, laddr) || !port_and_address(peer, pport, paddr)) return false;
  return lport == local_port_ && pport == remote_port_ && paddr == remote_addr_;
}

bool ConnectionProbe::closed() const {
  if (fd_ < 0) return false;
  // The descriptor may have been closed and reused for another connection: then ours is gone.
  if (!is_ours(fd_)) return true;
  pollfd p{fd_, short(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
  if (p.revents & POLLIN) {
    char byte;
    return recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;  // 0: orderly shutdown
  }
  return false;
}

}  // namespace tandem::server
