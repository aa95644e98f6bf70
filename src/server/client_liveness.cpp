#include "server/client_liveness.h"

#include <chrono>
#include <cstdlib>
#include <memory>

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

namespace ds {

namespace {

/// "host" and port of a socket address as cpp-httplib writes them into Request::remote_addr.
bool numeric_addr(const sockaddr_storage& a, socklen_t len, std::string& host, int& port) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, h, sizeof(h), p, sizeof(p),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  host = h;
  port = std::atoi(p);
  return true;
}

/// The port of an IPv4/IPv6 socket address; -1 for other families.
int port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

/// The connected socket of the request: cpp-httplib 0.11 gives a handler no socket and no liveness check,
/// so the open descriptors are matched on the local port and remote address:port (one
/// TCP connection has one such 4-tuple). -1 when none matches, -3 when two do (an old descriptor
/// of a reset connection whose client port was reused).
int find_request_socket(const std::string& remote_addr, int remote_port, int local_port) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(d)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof(local), pl = sizeof(peer);
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;  // not a socket
    if (port_of(local) != local_port) continue;  // also skips non-IP sockets (-1)
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;  // a listener
    if (port_of(peer) != remote_port) continue;
    std::string ph;
    int pp = -1;
    if (!numeric_addr(peer, pl, ph, pp)) continue;
    if (ph == remote_addr) {
      if (found >= 0) {  // two descriptors with one 4-tuple (an old one not closed yet): cannot tell
        spdlog::debug("request socket lookup: fds {} and {} both match {}:{}", found, fd, remote_addr, remote_port);
        found = -3;
        break;
      }
      found = int(fd);
    }
  }
  closedir(d);
  return found;
}

}  // namespace

ClientGone client_gone_check(const std::string& remote_addr, int remote_port, int local_port) {
  auto fd = std::make_shared<int>(find_request_socket(remote_addr, remote_port, local_port));
  return [remote_addr, remote_port, local_port, fd]() {
    if (*fd == -3) *fd = find_request_socket(remote_addr, remote_port, local_port);  // -3: two matched
    if (*fd < 0) return false;
    // POLLRDHUP: the peer shut down its side (also with unread bytes pending, which a recv peek
    // would see first); POLLHUP/POLLERR: reset.
    pollfd p{*fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) < 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  };
}

void drain_request_socket(const std::string& remote_addr, int remote_port, int local_port, int max_ms) {
  const int fd = find_request_socket(remote_addr, remote_port, local_port);
  if (fd < 0) return;
  ::shutdown(fd, SHUT_WR);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
  char buf[65536];
  size_t total = 0;
  while (total < (size_t(64) << 20)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;  // the client closed (or an error)
    total += size_t(n);
  }
}

}  // namespace ds
