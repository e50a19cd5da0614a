#!/usr/bin/env bash
# Installs what the gateway and its tests need, and nothing when it is already
# there (a warm machine never touches apt or npm):
#   - Node >= 20.19 (checked only; install it yourself),
#   - Debian packages (apt-get, --no-install-recommends), via sudo when not root,
#   - the mosquitto system service stopped and disabled (it would hold port 1883,
#     which the gateway's embedded broker needs; the tests use the binary only),
#   - node_modules (npm ci) when missing or older than package-lock.json.
# SKIP_APT=1 skips the Debian part (e.g. on a machine without apt).
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(
  ffmpeg espeak-ng mosquitto mosquitto-clients chromium curl jq
  python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  docker-compose openssl onvif-tools iproute2 zbar-tools
)
# Commands that must be on PATH once the packages are installed.
COMMANDS=(ffmpeg espeak-ng mosquitto mosquitto_pub mosquitto_sub chromium onvif-util curl jq ip zbarimg)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi
as_root() {
  if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "need root (or sudo) to run: $*"
  fi
  "${SUDO[@]}" "$@"
}

# --- Node -------------------------------------------------------------------
check_node() {
  command -v node >/dev/null 2>&1 || die "node is not installed; install Node.js >= 20.19 (e.g. the nodejs package of your distribution or nodejs.org), then re-run"
  command -v npm >/dev/null 2>&1 || die "npm is not installed; install npm (it ships with Node.js >= 20.19), then re-run"
  local v major minor
  v="$(node -p 'process.versions.node')"
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
    die "Node.js $v found at $(command -v node); the gateway needs Node.js >= 20.19. Upgrade Node, then re-run"
  fi
}

# --- Debian packages --------------------------------------------------------
missing_packages() {
  local pkg status
  for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "installed" ] || printf '%s\n' "$pkg"
  done
}

missing_commands() {
  local c
  for c in "${COMMANDS[@]}"; do command -v "$c" >/dev/null 2>&1 || printf '%s\n' "$c"; done
}

install_apt() {
  if [ "${SKIP_APT:-}" = "1" ]; then
    log "SKIP_APT=1: not checking Debian packages"
    return
  fi
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    local miss
    miss="$(missing_commands | tr '\n' ' ')"
    if [ -n "$miss" ]; then
      log "WARNING: no apt on this machine and these commands are missing: $miss"
      log "         install them by hand (tests that need them will fail or skip)"
    fi
    return
  fi
  local missing
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- the mosquitto system service ------------------------------------------
# The Debian package enables and starts a broker on 1883. Stop and disable it;
# harmless when it is not running, and works with or without systemd.
disable_mosquitto_service() {
  [ "${SKIP_APT:-}" = "1" ] && return
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    # systemd is PID 1: the unit may exist, be enabled and/or running.
    if systemctl list-unit-files mosquitto.service 2>/dev/null | grep -q '^mosquitto\.service'; then
      if systemctl is-enabled --quiet mosquitto.service 2>/dev/null || systemctl is-active --quiet mosquitto.service 2>/dev/null; then
        log "stopping and disabling the mosquitto system service (port 1883 belongs to the gateway)"
        as_root systemctl disable --now mosquitto.service >/dev/null 2>&1 || log "WARNING: could not disable mosquitto.service"
      fi
    fi
    return
  fi
  # No systemd (containers, WSL): SysV init script, if the package installed one.
  if [ -x /etc/init.d/mosquitto ]; then
    if /etc/init.d/mosquitto status >/dev/null 2>&1; then
      log "stopping the mosquitto init.d service (port 1883 belongs to the gateway)"
      as_root /etc/init.d/mosquitto stop >/dev/null 2>&1 || log "WARNING: could not stop /etc/init.d/mosquitto"
    fi
    if compgen -G '/etc/rc[2-5].d/S*mosquitto' >/dev/null && command -v update-rc.d >/dev/null 2>&1; then
      log "disabling mosquitto at boot (update-rc.d)"
      as_root update-rc.d mosquitto disable >/dev/null 2>&1 || log "WARNING: could not disable mosquitto at boot"
    fi
  fi
}

# --- npm --------------------------------------------------------------------
install_npm() {
  if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "npm ci"
    npm ci --no-audit --no-fund
  fi
}

check_node
install_apt
disable_mosquitto_service
install_npm
log "ok"
