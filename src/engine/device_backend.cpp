// Registry of optional device backends (see device_backend.h).
#include "engine/device_backend.h"

#include <map>
#include <mutex>

namespace ds {
namespace {
// Function-local statics: safe to use from other translation units' static initializers.
std::map<std::string, DeviceBackend>& registry() {
  static std::map<std::string, DeviceBackend> r;
  return r;
}
std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}
}  // namespace

bool register_device_backend(DeviceBackend b) {
  std::lock_guard<std::mutex> lock(registry_mu());
  std::string name = b.name;
  registry()[name] = std::move(b);
  return true;
}

const DeviceBackend* find_device_backend(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry_mu());
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

}  // namespace ds
