// Measurement entry points for `npm run bench`: the machine's multiply-add peak and the
// time of every operation of a training step.
#pragma once

#include <napi.h>

namespace tempered {
namespace napi {

// fmaPeak(seconds) -> Promise<{ gflops, clockGhz, threads, isa }>; clockGhz is the measured core clock
// (0 where it cannot be measured).
Napi::Value FmaPeak(const Napi::CallbackInfo& info);
// profileTraining(backend, batchSize, steps) -> Promise<NativeOpProfile[]>
Napi::Value ProfileTraining(const Napi::CallbackInfo& info);
Napi::Value ProfileForward(const Napi::CallbackInfo& info);

}  // namespace napi
}  // namespace tempered
