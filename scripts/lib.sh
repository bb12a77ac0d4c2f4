# Shared set-up for scripts/run, scripts/test and scripts/bench (sourced, not run).
# Installs what is missing and nothing else; safe to run again.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PYTHON_BIN=${PYTHON:-python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# ensure_packages DEB_PACKAGE:COMMAND_OR_FILE ...
ensure_packages() {
  local missing=() item pkg probe
  for item in "$@"; do
    pkg=${item%%:*}; probe=${item#*:}
    if [[ $probe == /* ]]; then ls $probe >/dev/null 2>&1 && continue
    else command -v "$probe" >/dev/null 2>&1 && continue; fi
    missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing system packages: ${missing[*]}." >&2
    echo "Install them (e.g. sudo apt-get install ${missing[*]}) and run this again." >&2
    exit 1
  fi
  say "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_base_packages() {
  ensure_packages softhsm2:softhsm2-util opensc:pkcs11-tool openssl:openssl
}

# The virtual environment, reinstalled when pyproject.toml changes.
ensure_venv() {
  local stamp="$VENV/.guichet-installed" want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating the virtual environment in .venv"
    "$PYTHON_BIN" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "Installing guichet and its dependencies"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
    echo "$want" > "$stamp"
  fi
}
