#!/usr/bin/env bash
# Creates the MONAI Label environment: a second venv (default .venv-monailabel at the repository
# root), apart from the main .venv, with monailabel 0.8.5 serving this bundle.
#
#   bash scripts/install_monailabel_env.sh            # install, or skip when already complete
#   MONAILABEL_VENV=/path/to/venv bash scripts/install_monailabel_env.sh
#   bash scripts/install_monailabel_env.sh --force    # reinstall even if complete
#
# Why in four steps (see docs/monailabel.md): monailabel's declared dependency set does not resolve
# with MONAI 1.6 and numpy 2 (sam2, numpymaxflow, pydicom-seg), and it imports torchvision, whose
# only wheel for torch 2.13 is a CUDA build that fails beside the CPU torch. torch 2.14.1 with
# torchvision 0.29.1 is a matching pair. Every step runs under the same constraints file, the
# tested set, so no step can pull a different torch.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MONAILABEL_VENV:-$REPO/.venv-monailabel}"
PYTHON="${PYTHON:-python3}"
REQ="$REPO/requirements/monailabel.txt"
CONS="$REPO/requirements/monailabel-constraints.txt"
STAMP="$VENV/.osnet-monailabel-installed"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

fingerprint() {
    {
        cat "$REQ" "$CONS" "$REPO/pyproject.toml" "${BASH_SOURCE[0]}"
        "$PYTHON" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

verify() {
    "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import monailabel.app  # noqa: F401  the server's FastAPI app with all endpoints
import monailabel.tasks.infer.bundle, monailabel.tasks.train.bundle  # noqa: E401,F401
import osnet_monai, torch, torchvision  # noqa: E401,F401
assert torch.__version__.split("+")[0] == md.version("torch").split("+")[0]
print(f"monailabel {md.version('monailabel')}, monai {md.version('monai')}, torch {torch.__version__}, "
      f"torchvision {torchvision.__version__}, numpy {md.version('numpy')}, osnet-monai {md.version('osnet-monai')}")
EOF
}

want="$(fingerprint)"
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && found="$(verify 2>/dev/null)"; then
    echo "MONAI Label environment complete at $VENV, not reinstalled: ${found##*$'\n'}"
    exit 0
fi

start=$SECONDS
echo "Installing the MONAI Label environment into $VENV"
rm -f "$STAMP"
"$PYTHON" -m venv "$VENV"
echo '*' > "$VENV/.gitignore"  # never committed (several GB)
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q -c "$CONS" pip

step() { echo "  $1: $((SECONDS - start)) s"; }
# 1. the torch/torchvision pair first
"${PIP[@]}" install -q -c "$CONS" torch torchvision
step "torch + torchvision"
# 2. monailabel and pydicom-seg without their declared dependencies
"${PIP[@]}" install -q -c "$CONS" --no-deps monailabel pydicom-seg
step "monailabel (no deps)"
# 3. what the server, the monaibundle app, infer and train import. pip then reports monailabel's
#    declared-but-absent dependencies (sam2, numpymaxflow, ...) as conflicts: expected, see the file.
"${PIP[@]}" install -q -c "$CONS" -r "$REQ" 2>&1 | grep -v "^monailabel .* requires \|^pydicom-seg .* requires \|dependency resolver does not currently" || true
step "server requirements"
# 4. this package, editable; torch is already satisfied and pinned
"${PIP[@]}" install -q -c "$CONS" -e "$REPO" 2>&1 | grep -v "^monailabel .* requires \|^pydicom-seg .* requires \|dependency resolver does not currently" || true
step "osnet-monai (editable)"

verify
fingerprint > "$STAMP"
echo "MONAI Label environment ready in $((SECONDS - start)) s: $(du -sh "$VENV" | cut -f1) at $VENV"
