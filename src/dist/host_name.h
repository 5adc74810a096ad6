// This machine's host name, as reports name it (straggler lines, hang errors).
#pragma once
#include <string>

namespace agpt::dist {
std::string host_name();
}
