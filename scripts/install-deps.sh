#!/usr/bin/env bash
# Installs tandem's build and test dependencies from Debian 12 packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git python3 clang libclang-rt-14-dev \
  libhwloc-dev libnuma-dev libopenblas-dev libvulkan-dev glslang-tools glslang-dev \
  mesa-vulkan-drivers libtbb-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev \
  libboost-dev libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libedit-dev >/dev/null
# Node.js and npm for the real-client tests (tests/clients: the openai npm SDK and ollama-js),
# from Debian unless a node is already installed; the clients at the versions of the committed
# package-lock.json.
if ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# Headless Chromium for the browser CORS test (tests/integration/browser_cors_check.sh).
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
clients="$(cd "$(dirname "$0")/.." && pwd)/tests/clients"
npm ci --prefix "$clients" --no-audit --no-fund --loglevel=error
