#!/usr/bin/env bash
# Install llama-cpp-python built for a portable x86-64 target, never -march=native.
#
# Why: llama-cpp-python compiles llama.cpp with GGML_NATIVE (-march=native) by default. A VM that advertises
# AMX in cpuid but faults on its tile instructions then dies with SIGILL on the first decode, and a wheel built
# natively on one machine dies on the next (pip's wheel cache, a Docker layer, a Space image). pip's own wheel
# cache does not key on CMAKE_ARGS, so we never use it for this package: the wheel is built with --no-cache-dir
# into a cache of our own whose folder name hashes the version, the flags and the architecture.
#
# Usage: scripts/build_llama_cpp.sh PYTHON        build (once per version+flags) and install into PYTHON's env
#        scripts/build_llama_cpp.sh --print-flags  print the CMake flags this machine would build with
# LLAMA_CPP_CMAKE_ARGS replaces the flags (see README, Install). `ta doctor` checks the result.
set -euo pipefail
python=${1:?usage: build_llama_cpp.sh PYTHON | --print-flags}
version=$(sed -n 's/^ *"llama-cpp-python==\([0-9.]*\)".*/\1/p' "$(dirname "$0")/../pyproject.toml")
[ -n "$version" ] || { echo "no llama-cpp-python==X pin in pyproject.toml" >&2; exit 1; }
arch=$(uname -m)
if [ "$arch" = x86_64 ]; then
  # x86-64-v3 (Haswell and later, Zen 1 and later): AVX2, FMA, F16C, BMI2. No AVX-512 (absent on most desktop
  # CPUs, so a wheel carried there would fault) and no AMX (faults on VMs that advertise it). Measured against
  # an AVX-512 build in the README (Measuring: the portable llama.cpp build). tutor/doctor.py repeats them.
  default="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  default="$default -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
else
  default="-DGGML_NATIVE=OFF"   # the compiler's generic target for this architecture
fi
flags=${LLAMA_CPP_CMAKE_ARGS:-$default}
if [ "$python" = --print-flags ]; then
  printf '%s\n' "$flags"
  exit 0
fi
sha=$(command -v sha256sum || echo "shasum -a 256")   # macOS has only shasum
key=$(printf '%s|%s|%s' "$version" "$flags" "$arch" | $sha | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/ml-tutor/wheels/llama-cpp-python-$version-$key
if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $version for a portable $arch target (about 6 minutes, once)"
  echo "  CMAKE_ARGS=$flags"
  rm -rf "$cache.partial" && mkdir -p "$cache.partial"
  CMAKE_ARGS="$flags" FORCE_CMAKE=1 "$python" -m pip wheel --quiet --no-cache-dir --no-deps \
    --no-binary llama-cpp-python "llama-cpp-python==$version" -w "$cache.partial"
  printf '%s\n' "$flags" >"$cache.partial/CMAKE_ARGS"   # what this wheel was built with, for a reader
  rm -rf "$cache" && mv "$cache.partial" "$cache"
fi
# --force-reinstall: a natively built copy already in this environment is replaced, not kept.
"$python" -m pip install --quiet --no-deps --force-reinstall "$cache"/llama_cpp_python-*.whl
