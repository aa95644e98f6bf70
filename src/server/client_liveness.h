// Whether an HTTP client is still connected, for a handler that cpp-httplib 0.11 gives neither its
// socket nor a liveness check (docs/server.md, "HTTP and engine"): the connection's descriptor is
// found among /proc/self/fd by the request's 4-tuple and polled for POLLRDHUP/POLLHUP/POLLERR.
#pragma once
#include <string>

#include "server/chat_service.h"

namespace ds {

/// A ClientGone for the connection whose peer is `remote_addr`:`remote_port` (as cpp-httplib writes
/// Request::remote_addr, numeric) on the server's `local_port`: true once the peer closed its side
/// (POLLRDHUP, also with unread bytes pending; a half-close counts, as in uvicorn) or reset the
/// connection (POLLHUP/POLLERR). The descriptor is looked
/// up now, while the client has just sent its request (a lookup after it left could match a new
/// connection that reuses its port); two matching descriptors are looked up again at the next call;
/// none found: never reported gone. Call it from the handler's thread while the connection is open.
ClientGone client_gone_check(const std::string& remote_addr, int remote_port, int local_port);

/// The first half of a lingering close (RFC 9112 9.6) for the connection found as above: sends FIN
/// after the bytes already written (shutdown SHUT_WR), then reads and discards what the client still
/// sends (a body the server refused) until it closes, `max_ms` pass or 64 MiB were read, so that the
/// close that follows does not reset the connection (a reset can destroy the answer before the
/// client reads it). Does nothing when the socket is not found. Call it on the connection's thread.
void drain_request_socket(const std::string& remote_addr, int remote_port, int local_port, int max_ms);

}  // namespace ds
