// client_gone_check on real loopback TCP connections: alive while open (also with unread bytes),
// gone after the peer closes (FIN, also behind unread bytes) or resets (RST), never gone for a
// 4-tuple that matches no descriptor.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/client_liveness.h"

namespace {

struct Pair {
  int listener = -1, server = -1, client = -1;
  int server_port = 0, client_port = 0;
  Pair() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(listener, 4);
    socklen_t l = sizeof(a);
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &l);
    server_port = ntohs(a.sin_port);
    client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    server = accept(listener, nullptr, nullptr);
    sockaddr_in c{};
    l = sizeof(c);
    getsockname(client, reinterpret_cast<sockaddr*>(&c), &l);
    client_port = ntohs(c.sin_port);
  }
  ~Pair() {
    for (int fd : {listener, server, client})
      if (fd >= 0) close(fd);
  }
};

TEST(ClientLiveness, OpenConnectionIsNotGoneAndAFinIs) {
  Pair p;
  ASSERT_GE(p.server, 0);
  auto gone = ds::client_gone_check("127.0.0.1", p.client_port, p.server_port);
  EXPECT_FALSE(gone());
  ASSERT_EQ(write(p.client, "x", 1), 1);  // pending bytes (a pipelined request) are not a close
  usleep(20000);
  EXPECT_FALSE(gone());
  close(p.client);  // a FIN behind the unread byte is still seen
  p.client = -1;
  usleep(20000);
  EXPECT_TRUE(gone());
}

TEST(ClientLiveness, AResetIsGone) {
  Pair p;
  auto gone = ds::client_gone_check("127.0.0.1", p.client_port, p.server_port);
  EXPECT_FALSE(gone());
  linger l{1, 0};  // close with RST
  setsockopt(p.client, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(p.client);
  p.client = -1;
  usleep(20000);
  EXPECT_TRUE(gone());
}

TEST(ClientLiveness, NoMatchingDescriptorIsNeverGone) {
  Pair p;
  auto wrong_port = ds::client_gone_check("127.0.0.1", p.client_port + 1 == 65536 ? 1 : p.client_port + 1, p.server_port);
  auto wrong_addr = ds::client_gone_check("127.0.0.2", p.client_port, p.server_port);
  close(p.client);
  p.client = -1;
  usleep(20000);
  EXPECT_FALSE(wrong_port());
  EXPECT_FALSE(wrong_addr());
}

}  // namespace
