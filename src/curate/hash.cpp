#include "curate/hash.h"

#include <xxhash.h>

#include <new>

namespace agpt::curate {

uint64_t xxh64(std::string_view data, uint64_t seed) { return XXH64(data.data(), data.size(), seed); }

void Xxh64Stream::Free::operator()(XXH64_state_s* s) const { XXH64_freeState(s); }

Xxh64Stream::Xxh64Stream(uint64_t seed) : state_(XXH64_createState()) {
  if (!state_) throw std::bad_alloc();
  reset(seed);
}
Xxh64Stream::~Xxh64Stream() = default;
Xxh64Stream::Xxh64Stream(Xxh64Stream&&) noexcept = default;
Xxh64Stream& Xxh64Stream::operator=(Xxh64Stream&&) noexcept = default;

void Xxh64Stream::reset(uint64_t seed) { XXH64_reset(state_.get(), seed); }
void Xxh64Stream::update(std::string_view data) { XXH64_update(state_.get(), data.data(), data.size()); }
uint64_t Xxh64Stream::digest() const { return XXH64_digest(state_.get()); }

Hash128 hash128(std::string_view data) { return {xxh64(data, 0), xxh64(data, 0x5BD1E9955BD1E995ull)}; }

}  // namespace agpt::curate
