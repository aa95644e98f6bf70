// The deepserve version: printed by `deepserve --version` / `deepserve serve --version` and
// reported as "version" by GET /get_server_info.
#pragma once

namespace ds {

/// Semantic version of this source tree (bump on releases).
inline constexpr const char* kVersion = "0.2.0";

}  // namespace ds
