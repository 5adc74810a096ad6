#include "dist/host_name.h"

#include <unistd.h>

namespace agpt::dist {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

}  // namespace agpt::dist
