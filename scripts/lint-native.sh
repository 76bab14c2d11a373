#!/usr/bin/env bash
# Lints native/'s own C++ (not the CUDA runtime emulation's stand-in headers):
#   scripts/lint-native.sh          clang-format check + cppcheck; exit 1 on any finding
#   scripts/lint-native.sh --fix    clang-format -i (the `npm run format` step for native/)
# Both tools come from apt (clang-format, cppcheck). Where one is absent its step is skipped
# with a visible "skipped:" line, so `npm test` still runs on a machine without them.
set -uo pipefail
cd "$(dirname "$0")/.."

# Own files: tracked C++/CUDA sources and headers under native/, minus the emulation.
mapfile -t FORMAT_FILES < <(git ls-files 'native/*.cpp' 'native/*.h' 'native/*.cu' 'native/*.cuh' | grep -v '^native/cuda/emulation/')
# cppcheck does not parse CUDA (<<<...>>> launches), so it reads the C++ translation units only.
mapfile -t CHECK_FILES < <(git ls-files 'native/*.cpp' | grep -v '^native/cuda/emulation/')

status=0

if [ "${1:-}" = "--fix" ]; then
  if ! command -v clang-format >/dev/null 2>&1; then
    echo "lint-native: skipped: clang-format not installed (apt-get install clang-format)"
    exit 0
  fi
  clang-format -i --style=file "${FORMAT_FILES[@]}"
  echo "lint-native: formatted ${#FORMAT_FILES[@]} files"
  exit 0
fi

if command -v clang-format >/dev/null 2>&1; then
  unformatted=()
  for f in "${FORMAT_FILES[@]}"; do
    clang-format --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
  done
  if [ ${#unformatted[@]} -gt 0 ]; then
    echo "lint-native: clang-format: ${#unformatted[@]} files differ from .clang-format (npm run format fixes them):"
    printf '  %s\n' "${unformatted[@]}"
    status=1
  else
    echo "lint-native: clang-format: ${#FORMAT_FILES[@]} files formatted"
  fi
else
  echo "lint-native: skipped: clang-format not installed (apt-get install clang-format)"
fi

if command -v cppcheck >/dev/null 2>&1; then
  jobs=$(nproc 2>/dev/null || echo 2)
  if cppcheck --enable=warning,performance,portability --std=c++17 --language=c++ --inline-suppr --quiet \
    --error-exitcode=1 --suppressions-list=scripts/cppcheck-suppressions.txt -j "$jobs" \
    -I native/include -I native/core -I native/cpu "${CHECK_FILES[@]}"; then
    echo "lint-native: cppcheck: ${#CHECK_FILES[@]} files, no findings"
  else
    echo "lint-native: cppcheck: findings above"
    status=1
  fi
else
  echo "lint-native: skipped: cppcheck not installed (apt-get install cppcheck)"
fi

exit $status
