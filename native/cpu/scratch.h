// Scratch memory for the CPU operations: one set of growing, 64-byte-aligned buffers per
// calling thread, kept between calls (no allocation or page faults in the steady state).
// Each operation takes the slots it needs; an operation never calls another operation
// that uses the same slot.
#pragma once

#include <cstddef>

namespace tempered {
namespace cpu {

enum ScratchSlot {
  kScratchPackedWeights,
  kScratchPackedBias,
  kScratchPadded,
  kScratchPartials,
  kScratchSweep0,
  kScratchSweep1,
  kScratchSweep2,
  kScratchSweep3,
  kScratchWinogradIn,
  kScratchWinogradOut,
  kScratchPairRows,
  kScratchSlots
};

// Returns at least `floats` floats for `slot` (contents unspecified), or null when the
// allocation fails.
float* scratch(ScratchSlot slot, size_t floats);

}  // namespace cpu
}  // namespace tempered
