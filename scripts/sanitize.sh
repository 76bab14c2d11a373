#!/usr/bin/env bash
# The native code under sanitizers:
#   1. the addon built with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/
#      (git-ignored), and the native tests run against it with the ASan runtime preloaded
#      into Node (leak detection off: Node itself does not free everything at exit);
#   2. valgrind memcheck over a short training and a short attack with the AVX2 kernels
#      forced (valgrind 3.19 decodes no AVX-512), counting errors in the project's code only
#      (Node's and V8's own are not ours to fix);
#   3. the thread pool's stress run (native/dev/thread_pool_stress.cpp) under ThreadSanitizer.
# Usage: scripts/sanitize.sh [asan|valgrind|tsan|all]   (default all). Exits non-zero on any error.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
jobs="${TEMPERED_CMAKE_PARALLEL:-2}"

if [ "$what" = asan ] || [ "$what" = all ]; then
  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
  node node_modules/cmake-js/bin/cmake-js compile --directory . --out build-asan --parallel "$jobs" \
    --CDTEMPERED_CUDA=OFF "--CDCMAKE_CXX_FLAGS=$san" "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
  addon="$PWD/build-asan/Release/tempered.node"
  test -f "$addon"
  echo "sanitize: ASan+UBSan build: $addon"
  # Node is not built with ASan: preload the runtime; tests spawn children that inherit it.
  TEMPERED_ADDON_PATH="$addon" \
  LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1:handle_segv=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    npx jest --runInBand test/native-errors.test.ts test/native-hostile.test.ts test/native-codes.test.ts \
      test/native-model-load.test.ts test/worker-threads.test.ts test/fuzz-native.test.ts test/binding.test.ts \
      test/attacks-literature.test.ts test/model-threads.test.ts
  echo "sanitize: native tests clean under ASan+UBSan"
fi

if [ "$what" = valgrind ] || [ "$what" = all ]; then
  command -v valgrind >/dev/null || { echo "sanitize: valgrind not installed"; exit 1; }
  log="$(mktemp)"
  TEMPERED_ISA=avx2 valgrind --tool=memcheck --error-limit=no --num-callers=40 --leak-check=no --track-origins=no \
    node scripts/valgrind-job.js 2>"$log"
  # Error blocks (lines between blank "==pid==" lines) that mention the addon.
  ours=$(awk '/^==[0-9]+== $/ { if (block ~ /tempered\.node|native\//) n++; block=""; next } { block = block "\n" $0 } END { print n+0 }' "$log")
  total=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1)
  echo "sanitize: valgrind memcheck: ${ours} error(s) in the project's code (${total:-?} in all, Node and V8 included)"
  if [ "$ours" != 0 ]; then
    awk '/^==[0-9]+== $/ { if (block ~ /tempered\.node|native\//) print block; block=""; next } { block = block "\n" $0 }' "$log" | head -200
    exit 1
  fi
  rm -f "$log"
fi

if [ "$what" = tsan ] || [ "$what" = all ]; then
  out="$(mktemp -d)"
  g++ -std=c++17 -O1 -g -fsanitize=thread -Inative/cpu native/dev/thread_pool_stress.cpp native/cpu/thread_pool.cpp \
    -o "$out/thread_pool_stress" -lpthread
  TSAN_OPTIONS="halt_on_error=1" "$out/thread_pool_stress"
  echo "sanitize: thread pool clean under ThreadSanitizer"
  rm -rf "$out"
fi
