#!/usr/bin/env bash
# Installs what the WebGPU tests need on a Debian machine without a GPU: the Vulkan loader
# (libvulkan1) and Chromium, whose package ships the SwiftShader Vulkan driver
# (/usr/lib/chromium/vk_swiftshader_icd.json; Mesa's lavapipe is refused by Dawn). Idempotent and
# quiet: it does nothing when both are there, and prints one line either way. Needs root (CI is).
# The tests point Vulkan at SwiftShader themselves (scripts/lib/webgpu-env.ts).
set -euo pipefail

ICD=/usr/lib/chromium/vk_swiftshader_icd.json
# (not `ldconfig -p | grep -q`: with pipefail, grep's early exit makes ldconfig fail on SIGPIPE)
have_loader() { [[ "$(ldconfig -p 2>/dev/null)" == *"libvulkan.so.1 "* ]]; }

if have_loader && [ -f "$ICD" ]; then
  echo "install-webgpu: libvulkan1 and SwiftShader ($ICD) already present"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "install-webgpu: no apt-get here; install a Vulkan loader and driver by hand" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends libvulkan1 chromium; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  rm -f "$log"
  echo "install-webgpu: apt-get failed" >&2
  exit 1
fi
rm -f "$log"

if ! have_loader || [ ! -f "$ICD" ]; then
  echo "install-webgpu: installed, but libvulkan.so.1 or $ICD is still missing" >&2
  exit 1
fi
echo "install-webgpu: installed libvulkan1 and chromium (SwiftShader at $ICD)"
