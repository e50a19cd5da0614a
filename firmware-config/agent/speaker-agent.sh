#!/bin/sh
# Reference speaker agent: device contract v1 (docs/device-protocol.md) for
# Linux speaker boxes (OpenWrt, Raspberry Pi + 4G modem) in POSIX sh, with
# mosquitto_sub / mosquitto_pub, curl, jq, sha256sum and a player
# (mpg123, ffplay, or ffmpeg for the null/file sinks used in tests).
#
#   speaker-agent.sh /etc/commune/speaker-agent.conf
#
# Processes: the main loop keeps one mosquitto_sub session (client id = device
# id, Last Will "offline") and reads commands from it; a heartbeat loop sends
# telemetry and flushes the event outbox; a scheduler loop plays the queue
# (highest priority due first, a higher one interrupts, an interrupted one
# replays from the start). They share state through files in STATE_DIR, so a
# reboot or a crash of one loop loses nothing that was acknowledged.
# Publishing uses short auxiliary sessions `<id>.<suffix>` (mosquitto_pub
# cannot share mosquitto_sub's session). The secret never appears on a command
# line (ps): both clients read it from their option files in STATE_DIR/mqtt.
set -u

CONF=${1:-/etc/commune/speaker-agent.conf}
[ -r "$CONF" ] || { echo "speaker-agent: cannot read config $CONF" >&2; exit 2; }

# --- config: KEY=value lines, known keys only (never sourced: it is data) ----
DEVICE_ID= DEVICE_SECRET= BROKER_HOST=127.0.0.1 BROKER_PORT=1883 BROKER_CAFILE=
TOPIC_ROOT=commune ZONE_ID= MEDIA_BASE_URL= STATE_DIR=/var/lib/speaker-agent
CACHE_MAX_MB=512 PLAYER=mpg123 PLAYER_FILE_DIR= HEARTBEAT_SECONDS=30
FW_VERSION=0.0.0 MODEL=SPK-LINUX RSSI_DBM=-70 KEEPALIVE_SECONDS=30 LOG_FILE=
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  key=${line%%=*} val=${line#*=}
  case "$key" in
    DEVICE_ID|DEVICE_SECRET|BROKER_HOST|BROKER_PORT|BROKER_CAFILE|TOPIC_ROOT|ZONE_ID|MEDIA_BASE_URL|STATE_DIR|CACHE_MAX_MB|PLAYER|PLAYER_FILE_DIR|HEARTBEAT_SECONDS|FW_VERSION|MODEL|RSSI_DBM|KEEPALIVE_SECONDS|LOG_FILE)
      eval "$key=\$val" ;;
    *) echo "speaker-agent: $CONF: unknown key '$key'" >&2; exit 2 ;;
  esac
done < "$CONF"
for k in DEVICE_ID DEVICE_SECRET MEDIA_BASE_URL; do
  eval "v=\${$k}"
  [ -n "$v" ] || { echo "speaker-agent: $CONF: $k is required" >&2; exit 2; }
done
case "$DEVICE_ID" in spk-*) ;; *) echo "speaker-agent: DEVICE_ID must start with spk-" >&2; exit 2 ;; esac
case "$PLAYER" in mpg123|ffplay|null|file) ;; *) echo "speaker-agent: PLAYER must be mpg123, ffplay, null or file" >&2; exit 2 ;; esac

# The installed firmware's version (an OTA swapped it in) wins over the config's.
[ -s "$STATE_DIR/firmware/current" ] && FW_VERSION=$(cat "$STATE_DIR/firmware/current")

T="$TOPIC_ROOT/dev/$DEVICE_ID"
Q="$STATE_DIR/queue" C="$STATE_DIR/cache" O="$STATE_DIR/outbox" D="$STATE_DIR/done"
mkdir -p "$Q" "$C" "$O" "$D" "$STATE_DIR/mqtt" "$STATE_DIR/tmp" || exit 1
chmod 700 "$STATE_DIR" "$STATE_DIR/mqtt"
[ -f "$STATE_DIR/volume" ] || echo 70 > "$STATE_DIR/volume"

log() {
  msg="$(date -u +%Y-%m-%dT%H:%M:%SZ) speaker-agent[$$]: $*"
  if [ -n "$LOG_FILE" ]; then echo "$msg" >> "$LOG_FILE"; else echo "$msg" >&2; fi
}

# Epoch milliseconds; busybox date has no %N, so fall back to whole seconds.
now_ms() {
  t=$(date +%s%3N)
  case "$t" in *N) t="$(date +%s)000" ;; esac
  echo "$t"
}
rand() { od -An -N4 -tu4 /dev/urandom | tr -d ' \n'; }

# Option files: the secret stays out of argv (mosquitto clients read
# $XDG_CONFIG_HOME/mosquitto_{sub,pub} before their arguments).
umask 077
{
  echo "-h $BROKER_HOST"; echo "-p $BROKER_PORT"; echo "-u $DEVICE_ID"; echo "-P $DEVICE_SECRET"
  echo "-V mqttv311"; echo "-k $KEEPALIVE_SECONDS"
  [ -n "$BROKER_CAFILE" ] && echo "--cafile $BROKER_CAFILE"
} > "$STATE_DIR/mqtt/mosquitto_pub"
cp "$STATE_DIR/mqtt/mosquitto_pub" "$STATE_DIR/mqtt/mosquitto_sub"
umask 022
export XDG_CONFIG_HOME="$STATE_DIR/mqtt"

# pub <channel> <json> [retain]: one QoS 1 message on an auxiliary session.
pub() {
  if [ "${3:-}" = retain ]; then
    mosquitto_pub -i "$DEVICE_ID.p$(rand)" -q 1 -r -t "$T/$1" -m "$2" 2>/dev/null
  else
    mosquitto_pub -i "$DEVICE_ID.p$(rand)" -q 1 -t "$T/$1" -m "$2" 2>/dev/null
  fi
}

# Events (proof of play) go through an outbox on flash: kept across link drops
# and reboots, sent in order, removed only once the broker has them.
event() { # event <json without at/eventId>
  at=$(now_ms)
  printf '%s\n' "$1" | jq -c --argjson at "$at" --arg eid "$DEVICE_ID-$at-$(rand)" '. + {at: $at, eventId: $eid}' > "$O/.$at.tmp" &&
    mv "$O/.$at.tmp" "$O/$at-$(rand).json"
  log "event $1"
  flush_outbox &
}
flush_outbox() {
  while :; do
    mkdir "$O/.lock" 2>/dev/null || return 0 # another flush runs; it looks again before it ends
    failed=0
    for f in $(ls "$O" 2>/dev/null | sort -n); do
      case "$f" in *.json) ;; *) continue ;; esac
      mosquitto_pub -i "$DEVICE_ID.o$(rand)" -q 1 -t "$T/event" -f "$O/$f" 2>/dev/null || { failed=1; break; }
      rm -f "$O/$f"
    done
    rmdir "$O/.lock"
    [ "$failed" = 1 ] && return 1
    # An event queued while we held the lock found it taken: send it now.
    ls "$O" 2>/dev/null | grep -q '[.]json$' || return 0
  done
}

ack() { # ack <id> <ok:true|false> [error]
  if [ "$2" = true ]; then a=$(jq -nc --arg id "$1" '{id: $id, ok: true}')
  else a=$(jq -nc --arg id "$1" --arg e "${3:-error}" '{id: $id, ok: false, error: $e}'); fi
  # Execute an id once, ack it every time: the ack is kept for re-sends.
  printf '%s\n' "$a" > "$D/$1"
  pub ack "$a" || log "ack $1 not sent (link down); the gateway re-sends the command"
}

cache_used() { du -sk "$C" 2>/dev/null | cut -f1; }
# Least recently played first, never what the queue still needs.
cache_evict() {
  max=$((CACHE_MAX_MB * 1024))
  for f in $(ls -tr "$C" 2>/dev/null); do
    [ "$(cache_used)" -le "$max" ] && return 0
    sha=${f%.mp3}
    grep -qs " $sha " "$Q"/* && continue
    rm -f "$C/$f"
  done
  [ "$(cache_used)" -le "$max" ]
}

# prefetch: download, verify size and SHA-256, cache, queue, ack.
prefetch() { # id bid url sha bytes playAt validUntil prio volume
  id=$1 bid=$2 url=$3 sha=$4 bytes=$5
  if [ ! -f "$C/$sha.mp3" ]; then
    case "$url" in http://*|https://*) full=$url ;; /*) full="$MEDIA_BASE_URL$url" ;; *) ack "$id" false "download failed: bad url"; return ;; esac
    tmp="$STATE_DIR/tmp/$sha.part"
    # -C -: a broken download resumes with a Range request.
    if ! curl -fsS --connect-timeout 10 --max-time 600 -C - -o "$tmp" "$full" 2>"$STATE_DIR/tmp/$sha.err"; then
      ack "$id" false "download failed: $(head -c 200 "$STATE_DIR/tmp/$sha.err")"; rm -f "$tmp"; return
    fi
    got=$(sha256sum "$tmp" | cut -d' ' -f1)
    size=$(wc -c < "$tmp" | tr -d ' ')
    if [ "$got" != "$sha" ] || { [ -n "$bytes" ] && [ "$size" != "$bytes" ]; }; then
      rm -f "$tmp"; ack "$id" false "sha256 mismatch"; return
    fi
    mv "$tmp" "$C/$sha.mp3"
    cache_evict || { rm -f "$C/$sha.mp3"; ack "$id" false "cache full"; return; }
  fi
  enqueue "$bid" "$6" "$7" "$8" "$sha" "$9" file
  ack "$id" true
}

# ota: download the image (resumable), check size and SHA-256, install it by
# swapping files (the previous one kept for a rollback), ack, then reboot
# into it; the new version is announced in state and telemetry after the
# restart. A real box would write the image with sysupgrade here.
ota() { # id url sha bytes version
  id=$1 url=$2 sha=$3 bytes=$4 version=$5
  case "$url" in http://*|https://*) full=$url ;; /*) full="$MEDIA_BASE_URL$url" ;; *) ack "$id" false "download failed: bad url"; return ;; esac
  case "$version" in ''|*[!0-9A-Za-z.+-]*) ack "$id" false "bad version"; return ;; esac
  mkdir -p "$STATE_DIR/firmware"
  tmp="$STATE_DIR/tmp/fw-$sha.part"
  if ! curl -fsS --connect-timeout 10 --max-time 1800 -C - -o "$tmp" "$full" 2>"$STATE_DIR/tmp/fw.err"; then
    ack "$id" false "download failed: $(head -c 200 "$STATE_DIR/tmp/fw.err")"; rm -f "$tmp"; return
  fi
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  size=$(wc -c < "$tmp" | tr -d ' ')
  if [ "$got" != "$sha" ] || [ "$size" != "$bytes" ]; then rm -f "$tmp"; ack "$id" false "sha256 mismatch"; return; fi
  mv "$tmp" "$STATE_DIR/firmware/$version.bin"
  [ -s "$STATE_DIR/firmware/current" ] && cp "$STATE_DIR/firmware/current" "$STATE_DIR/firmware/previous"
  printf '%s\n' "$version" > "$STATE_DIR/firmware/.current" && mv "$STATE_DIR/firmware/.current" "$STATE_DIR/firmware/current"
  ack "$id" true
  log "installed firmware $version; rebooting into it"
  touch "$STATE_DIR/reboot"
  # The command loop sleeps in mosquitto_sub: end the session so it sees the flag now.
  pkill -P $$ mosquitto_sub 2>/dev/null
}

prio_num() { case "$1" in emergency) echo 3 ;; priority) echo 2 ;; *) echo 1 ;; esac; }

# Queue entry: one line "playAt validUntil prio sha volume kind", kind file|stream.
enqueue() { # bid playAt validUntil prio sha volume kind
  [ -f "$STATE_DIR/played/$1" ] && return 0 # already played: a re-sent prefetch must not replay it
  printf '%s %s %s %s %s %s\n' "$2" "$3" "$(prio_num "$4")" "$5" "${6:--}" "$7" > "$Q/.$1" && mv "$Q/.$1" "$Q/$1"
}

# --- player -------------------------------------------------------------------
start_player() { # src volume -> sets PLAYER_PID
  src=$1 vol=$2
  case "$PLAYER" in
    mpg123) mpg123 -q -f $((32768 * vol / 100)) "$src" >/dev/null 2>&1 & ;;
    ffplay) ffplay -nodisp -autoexit -loglevel error -volume "$vol" "$src" >/dev/null 2>&1 & ;;
    # Real-time decode to nowhere / to a file: what a speaker does, minus the amplifier.
    null) ffmpeg -nostdin -loglevel error -re -i "$src" -af "volume=$vol/100" -f null - >/dev/null 2>&1 & ;;
    file) ffmpeg -nostdin -loglevel error -re -i "$src" -af "volume=$vol/100" -y "$PLAYER_FILE_DIR/$(now_ms).wav" >/dev/null 2>&1 & ;;
  esac
  PLAYER_PID=$!
}

scheduler() {
  playing= pprio=0 pkind= puntil=0 PLAYER_PID= started=0
  trap '[ -n "$PLAYER_PID" ] && kill "$PLAYER_PID" 2>/dev/null; exit 0' TERM INT
  mkdir -p "$STATE_DIR/played"
  while :; do
    now=$(now_ms)
    best= bprio=0 bat=0
    for f in $(ls "$Q" 2>/dev/null); do
      case "$f" in *.url) continue ;; esac
      read -r at until prio sha vol kind < "$Q/$f" 2>/dev/null || continue
      if [ "$f" != "$playing" ] && [ "$now" -gt "$until" ]; then
        rm -f "$Q/$f"; event "$(jq -nc --arg b "$f" '{type: "play-failed", broadcastId: $b, error: "expired"}')"; continue
      fi
      [ "$at" -le "$now" ] || continue
      if [ "$prio" -gt "$bprio" ] || { [ "$prio" -eq "$bprio" ] && [ "$at" -lt "$bat" ]; }; then best=$f bprio=$prio bat=$at; fi
    done
    if [ -n "$playing" ]; then
      changed=1
      if [ ! -f "$Q/$playing" ]; then # stopped by a command
        kill "$PLAYER_PID" 2>/dev/null; wait "$PLAYER_PID" 2>/dev/null
        event "$(jq -nc --arg b "$playing" '{type: "play-failed", broadcastId: $b, error: "stopped"}')"
        playing=
      elif [ "$pkind" = stream ] && [ "$now" -gt "$puntil" ]; then # a relay ends at `until`
        kill "$PLAYER_PID" 2>/dev/null; wait "$PLAYER_PID" 2>/dev/null
        event "$(jq -nc --arg b "$playing" --argjson d $(( now - started )) '{type: "play-finished", broadcastId: $b, durationMs: $d}')"
        touch "$STATE_DIR/played/$playing"; rm -f "$Q/$playing" "$Q/$playing.url"; playing=
      elif ! kill -0 "$PLAYER_PID" 2>/dev/null; then
        wait "$PLAYER_PID"; rc=$?
        if [ "$rc" -eq 0 ]; then
          event "$(jq -nc --arg b "$playing" --argjson d $(( $(now_ms) - started )) '{type: "play-finished", broadcastId: $b, durationMs: $d}')"
        else
          event "$(jq -nc --arg b "$playing" '{type: "play-failed", broadcastId: $b, error: "decode error"}')"
        fi
        touch "$STATE_DIR/played/$playing"; rm -f "$Q/$playing" "$Q/$playing.url"; playing=
      elif [ -n "$best" ] && [ "$best" != "$playing" ] && [ "$bprio" -gt "$pprio" ]; then
        # A higher priority is due: stop within the tick, replay this one from the start later.
        kill "$PLAYER_PID" 2>/dev/null; wait "$PLAYER_PID" 2>/dev/null
        event "$(jq -nc --arg b "$playing" --arg by "$best" '{type: "play-interrupted", broadcastId: $b, byBroadcastId: $by}')"
        playing=
      else
        changed=0
      fi
      # Something ended: choose again from the queue as it is now (the ended one may have been `best`).
      [ "$changed" = 1 ] && continue
    fi
    if [ -z "$playing" ] && [ -n "$best" ]; then
      read -r at until prio sha vol kind < "$Q/$best" 2>/dev/null || continue
      [ "$vol" = - ] && vol=$(cat "$STATE_DIR/volume")
      if [ "$kind" = stream ]; then src=$(cat "$Q/$best.url"); else src="$C/$sha.mp3"; touch "$src"; fi
      if [ "$kind" = stream ] || [ -f "$src" ]; then
        start_player "$src" "$vol"; started=$(now_ms); playing=$best pprio=$bprio pkind=$kind puntil=$until
        event "$(jq -nc --arg b "$best" --arg s "$sha" --argjson p "$at" '{type: "play-started", broadcastId: $b, mediaSha256: $s, playAt: $p}')"
      else
        rm -f "$Q/$best"; event "$(jq -nc --arg b "$best" '{type: "play-failed", broadcastId: $b, error: "not cached"}')"
      fi
    fi
    # Sleep to the next due item when it is close, so a start is on time, not a tick late.
    next=
    for f in $(ls "$Q" 2>/dev/null); do
      case "$f" in *.url) continue ;; esac
      read -r at rest < "$Q/$f" 2>/dev/null || continue
      [ "$at" -gt "$now" ] && { [ -z "$next" ] || [ "$at" -lt "$next" ]; } && next=$at
    done
    wait_ms=200
    if [ -n "$next" ]; then d=$((next - $(now_ms))); [ "$d" -lt "$wait_ms" ] && wait_ms=$d; fi
    [ "$wait_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
  done
}

heartbeat() {
  while :; do
    used=$(cache_used)
    free=$(( (CACHE_MAX_MB * 1024 - used) * 1024 )); [ "$free" -lt 0 ] && free=0
    up=$(cut -d. -f1 /proc/uptime 2>/dev/null || echo 0)
    temp=
    [ -r /sys/class/thermal/thermal_zone0/temp ] && temp=$(awk '{ printf "%.1f", $1 / 1000 }' /sys/class/thermal/thermal_zone0/temp)
    tm=$(jq -nc --argjson time "$(now_ms)" --argjson volume "$(cat "$STATE_DIR/volume")" --argjson rssi "$RSSI_DBM" \
      --argjson uptime "$up" --argjson free "$free" --arg fw "$FW_VERSION" --arg temp "$temp" \
      '{time: $time, volume: $volume, rssi: $rssi, uptime: $uptime, freeCache: $free, fw: $fw} + (if $temp == "" then {} else {temperature: ($temp | tonumber)} end)')
    pub telemetry "$tm" || true
    flush_outbox
    sleep "$HEARTBEAT_SECONDS"
  done
}

# --- commands ------------------------------------------------------------------
handle() { # one command JSON line
  vars=$(printf '%s\n' "$1" | jq -r '@sh "c_id=\(.id // "") c_type=\(.type // "") c_level=\(.level // "") c_seconds=\(.seconds // 1) c_hz=\(.frequencyHz // 440) c_bid=\(.broadcastId // "") c_url=\(.url // "") c_sha=\(.sha256 // "") c_bytes=\(.bytes // "") c_at=\(.playAt // 0) c_valid=\(.validUntil // 0) c_prio=\(.priority // "normal") c_vol=\(.volume // "") c_until=\(.until // 0) c_version=\(.version // "")"' 2>/dev/null) ||
    { log "dropped a command that is not JSON"; return; }
  eval "$vars"
  # Ids and broadcast ids become file names: plain characters only.
  case "$c_id$c_bid" in *[!A-Za-z0-9._-]*|'') log "dropped a command with a bad id"; return ;; esac
  case "$c_sha" in '') ;; *[!0-9a-f]*) ack "$c_id" false "bad sha256"; return ;; esac
  if [ -f "$D/$c_id" ]; then pub ack "$(cat "$D/$c_id")"; return; fi
  [ -f "$D/$c_id.busy" ] && return # a prefetch of this id is downloading; it acks when done
  case "$c_type" in
    volume)
      case "$c_level" in ''|*[!0-9]*) ack "$c_id" false "bad level"; return ;; esac
      echo "$c_level" > "$STATE_DIR/volume"; ack "$c_id" true ;;
    test-tone)
      ack "$c_id" true
      case "$PLAYER" in
        ffplay) ffplay -nodisp -autoexit -loglevel error -f lavfi "sine=frequency=$c_hz:duration=$c_seconds" >/dev/null 2>&1 & ;;
        *) ffmpeg -nostdin -loglevel error -re -f lavfi -i "sine=frequency=$c_hz:duration=$c_seconds" -f null - >/dev/null 2>&1 & ;;
      esac ;;
    prefetch)
      touch "$D/$c_id.busy"
      ( prefetch "$c_id" "$c_bid" "$c_url" "$c_sha" "$c_bytes" "$c_at" "$c_valid" "$c_prio" "$c_vol"; rm -f "$D/$c_id.busy" ) & ;;
    play)
      if [ -f "$C/$c_sha.mp3" ]; then enqueue "$c_bid" "$c_at" "$c_valid" "$c_prio" "$c_sha" "$c_vol" file; ack "$c_id" true
      else ack "$c_id" false "not cached"; fi ;;
    stop)
      rm -f "$Q/$c_bid" "$Q/$c_bid.url"; ack "$c_id" true ;;
    stream)
      case "$c_url" in http://*|https://*) su=$c_url ;; /*) su="$MEDIA_BASE_URL$c_url" ;; *) ack "$c_id" false "bad url"; return ;; esac
      printf '%s\n' "$su" > "$Q/$c_bid.url"
      enqueue "$c_bid" "$c_at" "${c_until:-0}" "$c_prio" - "$c_vol" stream; ack "$c_id" true ;;
    reboot)
      ack "$c_id" true; log "reboot requested"; touch "$STATE_DIR/reboot" ;;
    ota)
      [ -n "$c_sha" ] && [ -n "$c_version" ] || { ack "$c_id" false "ota: sha256 and version are required"; return; }
      touch "$D/$c_id.busy"
      ( ota "$c_id" "$c_url" "$c_sha" "$c_bytes" "$c_version"; rm -f "$D/$c_id.busy" ) & ;;
    *)
      ack "$c_id" false "unsupported command: $c_type" ;;
  esac
}

CHILDREN=
cleanup() {
  # shellcheck disable=SC2086
  [ -n "$CHILDREN" ] && kill $CHILDREN 2>/dev/null
  pkill -P $$ 2>/dev/null
  exit 0
}
trap cleanup INT TERM

log "starting as $DEVICE_ID (zone ${ZONE_ID:-none}) against $BROKER_HOST:$BROKER_PORT"
rm -rf "$O/.lock"
scheduler & CHILDREN="$CHILDREN $!"
heartbeat & CHILDREN="$CHILDREN $!"
event '{"type":"boot"}'

LINEBUF=
command -v stdbuf >/dev/null 2>&1 && LINEBUF="stdbuf -oL"
backoff=1
while :; do
  rm -f "$STATE_DIR/reboot"
  began=$(date +%s)
  state=$(jq -nc --arg fw "$FW_VERSION" --arg m "$MODEL" '{online: true, fw: $fw, model: $m}')
  # -d prints "received SUBACK": the moment to announce ourselves, after
  # subscribing, as the contract orders (the gateway then re-sends what we owe).
  [ -n "${AGENT_DEBUG:-}" ] && log "session: connecting"
  set -- -t "$T/cmd"
  [ -n "$ZONE_ID" ] && set -- "$@" -t "$TOPIC_ROOT/zone/$ZONE_ID/cmd"
  # mosquitto_sub flushes stdout after a message, not after its -d lines: with
  # no command waiting, "received SUBACK" would sit in its buffer and the
  # state would never go out. Line-buffer it where stdbuf exists (GNU); else
  # (busybox) announce the state shortly after connecting.
  if [ -n "$LINEBUF" ]; then set -- $LINEBUF mosquitto_sub "$@"; else set -- mosquitto_sub "$@"; ( sleep 2; pub state "$state" retain ) & fi
  "$@" -d -i "$DEVICE_ID" -q 1 \
    --will-topic "$T/state" --will-payload '{"online":false}' --will-qos 1 --will-retain 2>&1 |
  while IFS= read -r line; do
    case "$line" in
      '{'*) handle "$line" ;;
      *'received SUBACK'*) pub state "$state" retain; flush_outbox & ;;
      *'Connection error'*|*'Error:'*|*'rror'*) log "mqtt: $line" ;;
      *) [ -n "${AGENT_DEBUG:-}" ] && log "mqtt: $line" ;;
    esac
    [ -f "$STATE_DIR/reboot" ] && { pkill -P $$ mosquitto_sub 2>/dev/null; break; }
  done
  if [ -f "$STATE_DIR/reboot" ]; then
    log "rebooting (agent restart)"
    # shellcheck disable=SC2086
    kill $CHILDREN 2>/dev/null
    exec /bin/sh "$0" "$CONF"
  fi
  # A session that lasted resets the backoff; refusals in a row back off to 30 s.
  [ $(( $(date +%s) - began )) -gt 60 ] && backoff=1
  log "mqtt session ended; reconnecting in ${backoff}s"
  sleep "$backoff"
  backoff=$((backoff * 2)); [ "$backoff" -gt 30 ] && backoff=30
done
