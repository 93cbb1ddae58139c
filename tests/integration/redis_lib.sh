# shellcheck shell=bash disable=SC2034
# redis_lib.sh - Redis as a cluster runs it, for tests and benchmarks (sourced after lib.sh):
# a PKI made with openssl, a TLS-only redis-server and stunnel from contrib/redis-tls/ (as
# written, but for paths, ports and names), a master with replicas and sentinels. Everything on
# 127.0.0.1 under $IT_DIR, every wait bounded, every process tracked for lib.sh's watchdog and
# stopped by its PID (redis_lib_stop). The credentials are lib.sh's redis_auth_setup's (call it
# first): an ACL user "preflight" and requirepass on every node; the sentinels' password is
# $SEN_PW, in $IT_DIR/sentinel.pass (mode 0600).
#
# The caller sets, before using a part: TLS_PORT (the TLS Redis); REDIS_NODES (ports, the first
# the master) and SENTINELS (ports) with SEN_QUORUM.

REDIS_RECIPE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../contrib/redis-tls" && pwd)
SEN_PW=sentinel-pw-18
SEN_QUORUM=${SEN_QUORUM:-2}
REDIS_NODES=() SENTINELS=()
declare -gA NODE_PID=() SEN_PID=()
REDIS_TLS_PID='' STUNNEL_PIDS=()

# redis_lib_stop: every redis-server, sentinel and stunnel started here, by PID.
redis_lib_stop() {
  local p
  for p in "${STUNNEL_PIDS[@]}"; do stop_pids 50 "$p" stunnel; done
  for p in "${SEN_PID[@]}" "${NODE_PID[@]}" "$REDIS_TLS_PID"; do stop_pids 50 "$p" redis-server; done
}

# ---- TLS: certificates, Redis, stunnel -------------------------------------------------------

# make_cert NAME CA SUBJECT_ALT_NAMES: $IT_DIR/tls/NAME.key and .crt signed by CA.
make_cert() {
  local t=$IT_DIR/tls
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
    -keyout "$t/$1.key" -out "$t/$1.csr" 2>>"$t/openssl.log" &&
    openssl x509 -req -in "$t/$1.csr" -CA "$t/$2.crt" -CAkey "$t/$2.key" -CAcreateserial -days 2 \
      -out "$t/$1.crt" -extfile <(printf 'subjectAltName=%s' "$3") 2>>"$t/openssl.log"
}

make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$IT_DIR/tls/$1.key" -out "$IT_DIR/tls/$1.crt" 2>>"$IT_DIR/tls/openssl.log"
}

# make_pki: under $IT_DIR/tls, CA "ca" and "other-ca" (signs nothing of ours), a certificate for
# redis.preflight-it.test (and IP 127.0.0.1) and one for relay.preflight-it.test.
make_pki() {
  mkdir -p "$IT_DIR/tls" && make_ca ca && make_ca other-ca &&
    make_cert redis.preflight-it.test ca "DNS:redis.preflight-it.test,IP:127.0.0.1" &&
    make_cert relay.preflight-it.test ca "DNS:relay.preflight-it.test" &&
    chmod 0640 "$IT_DIR"/tls/*.key || return 1
  chgrp stunnel4 "$IT_DIR/tls/relay.preflight-it.test.key" 2>/dev/null
  return 0
}

# redis_tls ARGS...: redis-cli to the TLS Redis with the relay's certificate, as the default user.
redis_tls() {
  local t=$IT_DIR/tls
  redis-cli -h 127.0.0.1 -p "$TLS_PORT" --tls --cacert "$t/ca.crt" --cert "$t/relay.preflight-it.test.crt" \
    --key "$t/relay.preflight-it.test.key" "${REDIS_CLI_AUTH[@]}" "$@"
}
redis_tls_answers() { [[ $(redis_tls ping 2>/dev/null) == PONG ]]; }

# redis_tls_start: redis-server on TLS_PORT with the recipe's redis-tls.conf, its paths under
# $IT_DIR/tls; sets REDIS_TLS_PID.
redis_tls_start() {
  local t=$IT_DIR/tls d=$IT_DIR/redis-tls
  mkdir -p "$d"
  sed -e "s|/etc/redis/tls/redis.crt|$t/redis.preflight-it.test.crt|" \
    -e "s|/etc/redis/tls/redis.key|$t/redis.preflight-it.test.key|" \
    -e "s|/etc/redis/tls/ca.crt|$t/ca.crt|" -e "s|^tls-port .*|tls-port $TLS_PORT|" \
    "$REDIS_RECIPE/redis-tls.conf" >"$d/redis.conf"
  redis-server "$d/redis.conf" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" \
    --daemonize no "${REDIS_AUTH_ARGS[@]}" >"$d/log" 2>&1 </dev/null &
  REDIS_TLS_PID=$!
  track_pid "$REDIS_TLS_PID" redis-server
  wait_for 100 redis_tls_answers ||
    { echo "redis-server did not answer over TLS within 10 s: $(tail -3 "$d/log")" >&2; return 1; }
}

# stunnel_start NAME ACCEPT_PORT CHECK_HOST CA: the recipe's preflight-redis.conf with its paths,
# ports and name replaced, to the TLS Redis; log $IT_DIR/stunnel-NAME.log; waits until it
# listens (10 s at most).
stunnel_start() {
  local name=$1 port=$2 host=$3 ca=$4 conf=$IT_DIR/stunnel-$1.conf t=$IT_DIR/tls pid
  sed -e "s|^accept = .*|accept = 127.0.0.1:$port|" -e "s|^connect = .*|connect = 127.0.0.1:$TLS_PORT|" \
    -e "s|^checkHost = .*|checkHost = $host|" -e "s|^CAfile = .*|CAfile = $t/$ca.crt|" \
    -e "s|^cert = .*|cert = $t/relay.preflight-it.test.crt|" -e "s|^key = .*|key = $t/relay.preflight-it.test.key|" \
    "$REDIS_RECIPE/preflight-redis.conf" >"$conf"
  stunnel "$conf" >>"$IT_DIR/stunnel-$name.log" 2>&1 </dev/null &
  pid=$!
  track_pid "$pid" stunnel
  STUNNEL_PIDS+=("$pid")
  wait_for 100 tcp_open 127.0.0.1 "$port" ||
    { echo "stunnel $name did not listen on $port within 10 s: $(tail -3 "$IT_DIR/stunnel-$name.log")" >&2; return 1; }
}

# ---- Sentinel: a master, replicas, sentinels ----------------------------------------------------

# node_start PORT [MASTER_PORT]: a Redis node (a replica of MASTER_PORT if given), with the ACL
# user and requirepass, and masterauth for whichever node is master later.
node_start() {
  local port=$1 d=$IT_DIR/node-$1 pid
  mkdir -p "$d"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" --daemonize no \
    "${REDIS_AUTH_ARGS[@]}" --masterauth default-pw-18 ${2:+--replicaof 127.0.0.1 "$2"} \
    >"$d/log" 2>&1 </dev/null &
  pid=$!
  NODE_PID[$port]=$pid
  track_pid "$pid" redis-server
  wait_for 100 node_answers "$port" ||
    { echo "redis node $port did not answer within 10 s: $(tail -3 "$d/log")" >&2; return 1; }
}
node() { redis-cli -h 127.0.0.1 -p "$1" "${REDIS_CLI_AUTH[@]}" "${@:2}"; }
node_answers() { [[ $(node "$1" ping 2>/dev/null) == PONG ]]; }

# node_kill PORT: SIGKILL the node on PORT (a crash, not a stop).
node_kill() {
  local pid=${NODE_PID[$1]:-}
  [[ -n $pid ]] && pid_runs "$pid" redis-server && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  NODE_PID[$1]=''
}

# sentinel_start PORT: a sentinel of "mymaster" (the first of REDIS_NODES; quorum SEN_QUORUM, down
# after 1 s) that requires $SEN_PW.
sentinel_start() {
  local port=$1 d=$IT_DIR/sentinel-$1 pid
  mkdir -p "$d"
  cat >"$d/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
daemonize no
dir $d
requirepass $SEN_PW
sentinel sentinel-pass $SEN_PW
sentinel monitor mymaster 127.0.0.1 ${REDIS_NODES[0]} $SEN_QUORUM
sentinel auth-pass mymaster default-pw-18
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 10000
EOF
  redis-server "$d/sentinel.conf" --sentinel >"$d/log" 2>&1 </dev/null &
  pid=$!
  SEN_PID[$port]=$pid
  track_pid "$pid" redis-server
  wait_for 100 sentinel_answers "$port" ||
    { echo "sentinel $port did not answer within 10 s: $(tail -3 "$d/log")" >&2; return 1; }
}
sentinel() { redis-cli -h 127.0.0.1 -p "$1" -a "$SEN_PW" --no-auth-warning "${@:2}"; }
sentinel_answers() { [[ $(sentinel "$1" ping 2>/dev/null) == PONG ]]; }

# sentinel_master_port PORT: the master's port as the sentinel on PORT names it.
sentinel_master_port() { sentinel "$1" sentinel get-master-addr-by-name mymaster 2>/dev/null | sed -n 2p; }

# sentinels_ready: each sentinel knows every replica and every other sentinel.
sentinels_ready() {
  local s info
  for s in "${SENTINELS[@]}"; do
    info=$(sentinel "$s" sentinel master mymaster 2>/dev/null | paste - - | tr '\t' '=')
    grep -qx "num-slaves=$((${#REDIS_NODES[@]} - 1))" <<<"$info" &&
      grep -qx "num-other-sentinels=$((${#SENTINELS[@]} - 1))" <<<"$info" || return 1
  done
}

# all_sentinels_name_other_than PORT: every sentinel names the same master, not PORT.
all_sentinels_name_other_than() {
  local s m first=''
  for s in "${SENTINELS[@]}"; do
    m=$(sentinel_master_port "$s")
    [[ -n $m && $m != "$1" ]] || return 1
    [[ -z $first || $m == "$first" ]] || return 1
    first=$m
  done
}

# cluster_start: REDIS_NODES (the first master, the others its replicas) and SENTINELS; waits
# (30 s at most) until every sentinel sees every replica and every other sentinel.
cluster_start() {
  local p
  (umask 077 && echo "$SEN_PW" >"$IT_DIR/sentinel.pass")
  node_start "${REDIS_NODES[0]}" || return 1
  for p in "${REDIS_NODES[@]:1}"; do node_start "$p" "${REDIS_NODES[0]}" || return 1; done
  for p in "${SENTINELS[@]}"; do sentinel_start "$p" || return 1; done
  wait_for 300 sentinels_ready ||
    { echo "the sentinels did not see every replica and sentinel within 30 s" >&2; return 1; }
}
