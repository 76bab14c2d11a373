// Picks the kernels for this processor at run time.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace tempered {
namespace cpu {

#if defined(TEMPERED_HAVE_X86_KERNELS)
namespace avx512 {
extern const KernelTable kTable;
}
namespace avx2 {
extern const KernelTable kTable;
}
#endif
namespace generic {
extern const KernelTable kTable;
}

namespace {

bool supported(const KernelTable& t) {
#if defined(TEMPERED_HAVE_X86_KERNELS)
  __builtin_cpu_init();
  if (std::strcmp(t.isa, "avx512") == 0) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  }
  if (std::strcmp(t.isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::strcmp(t.isa, "generic") == 0;
}

const KernelTable* all_tables[] = {
#if defined(TEMPERED_HAVE_X86_KERNELS)
    &avx512::kTable,
    &avx2::kTable,
#endif
    &generic::kTable,
};

const KernelTable* choose() {
  const char* wanted = std::getenv("TEMPERED_ISA");
  if (wanted != nullptr && *wanted != '\0') {
    const KernelTable* t = kernels_for(wanted);
    if (t != nullptr) return t;
  }
  for (const KernelTable* t : all_tables)
    if (supported(*t)) return t;
  return &generic::kTable;
}

}  // namespace

const KernelTable* kernels_for(const char* isa) {
  for (const KernelTable* t : all_tables)
    if (std::strcmp(t->isa, isa) == 0 && supported(*t)) return t;
  return nullptr;
}

const KernelTable& active_kernels() {
  static const KernelTable* chosen = choose();
  return *chosen;
}

}  // namespace cpu
}  // namespace tempered
