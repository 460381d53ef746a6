#!/bin/sh
# Fetches llama.cpp's prebuilt CPU libraries (libggml-base.so + one libggml-cpu-<arch>.so per x86
# level) from the npm registry package @node-llama-cpp/linux-x64 into DIR (default
# .device/llama-cpp) and prints the folder to pass as `ggml_moe_peer --lib-dir`.
# The package contents are never committed (.device/ is ignored).
set -eu
dir=${1:-.device/llama-cpp}
version=${NODE_LLAMA_CPP_VERSION:-3.22.1}
mkdir -p "$dir"
if [ ! -f "$dir/bins/linux-x64/libggml-base.so" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@node-llama-cpp/linux-x64@$version" >/dev/null)
  tar xzf "$tmp"/node-llama-cpp-linux-x64-*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
fi
echo "$dir/bins/linux-x64"
