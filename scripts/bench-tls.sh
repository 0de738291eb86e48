#!/usr/bin/env bash
# bench-tls.sh: faztd's HTTPS against nginx's and Caddy's, same file, same run.
#
# A benchmark, not a test. All three servers serve the same 1 KiB HTML file
# over TLS on 127.0.0.1 as https://bench.fazt.test:PORT/small.html, and wrk
# measures, for each, in ROUNDS alternating rounds (medians reported):
#   1. keep-alive req/s and p99: CONNS connections that each stay open;
#   2. full TLS handshakes/s: `Connection: close`, so every request is a new
#      TLS connection, and no session is offered for resumption, so each one
#      is a full handshake (certificate, signature, key exchange);
#   3. resumed connections/s: the same, but wrk offers the session ticket it
#      was given (what wrk and most clients do by default: TLS 1.3 PSK
#      resumption, no certificate or signature).
# Then it prints a table and the faztd/nginx and faztd/caddy ratios, with the
# goals of issue 14: keep-alive >= 1.0x nginx and >= 3x Caddy; handshakes are
# quoted against both. wrk sends no ALPN, so all three answer over HTTP/1.1.
# Everything shares the machine with wrk: compare ratios, not absolute numbers.
#
# The certificates. faztd gets its own from a real ACME CA on loopback
# (Debian's pebble, with pebble-challtestsrv answering 127.0.0.1 for every
# name, validating TLS-ALPN-01 for real as tests/src/pebble.rs does): it runs
# with `--https on --domain fazt.test`, the site `bench` is deployed, and
# faztd orders bench.fazt.test. nginx and Caddy cannot read faztd's database,
# so they get a chain made here with openssl that mirrors the one faztd
# serves: the same number of certificates with the same key types (faztd's
# ACME code, instant-acme's Order::finalize, makes an ECDSA P-256 key with
# rcgen; pebble signs it with its own intermediate). A handshake's cost
# depends on the key types and the chain's size, not on who issued it; the
# script checks that the three servers present leaves of the same type and
# chains of the same length, and prints what each negotiated.
#
# Names without /etc/hosts. wrk takes the TLS SNI and the Host header from
# the URL's host, and resolves it with getaddrinfo in a Lua hook that a
# script may replace: the small Lua script below connects to 127.0.0.1
# whatever the name, so the URL can say bench.fazt.test and every server
# sees that name in SNI (faztd picks bench.fazt.test's certificate by it)
# and in Host. curl's checks use --resolve, and verify each chain and name.
#
# Full handshakes. wrk reuses one OpenSSL SSL object per connection slot and
# SSL_clear keeps its session, so on reconnecting it offers that session and
# all three servers resume it. A small LD_PRELOAD shim (compiled here with
# cc) wraps SSL_clear: it counts the closed connections that were resumed or
# full, and with TLS_BENCH_DROP=1 it forgets the session, so every
# connection is a full handshake. The counts are printed with the results.
#
# Usage: scripts/bench-tls.sh
#
# Environment knobs:
#   DURATION=10s       how long each measured wrk run lasts
#   ROUNDS=3           alternating rounds (each server, each measurement, once per round)
#   CONNS=64           open connections for wrk (2 threads)
#   BUILD=0            skip `cargo build --release` (use the binaries already built)
#   RESULTS_JSON=FILE  also write the results as JSON to FILE
#   CARGO_TARGET_DIR   where cargo puts binaries [default: <repo>/target]
#
# Needs: cargo, cc, curl, openssl, python3, wrk, nginx (nginx-light), caddy,
# pebble (apt-get install gcc curl openssl wrk nginx-light caddy pebble).

set -euo pipefail

# Paths, BUILD, log/die, $TMP and its cleanup, faztd, ports, wrk: shared by
# every bench script, and explained in lib/bench-common.sh.
# shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
RESULTS_JSON=${RESULTS_JSON:-}
WARMUP=2s
THREADS=2
SITE=bench
DOMAIN=fazt.test
NAME=$SITE.$DOMAIN
FILE=small.html

# ---------------------------------------------------------------------------
# 0. Prerequisites.
# ---------------------------------------------------------------------------
HINT="apt-get install gcc curl openssl wrk nginx-light caddy pebble"
NGINX=$(find_tool nginx "$HINT")
CADDY=$(find_tool caddy "$HINT")
PEBBLE=$(find_tool pebble "$HINT")
CHALLTESTSRV=$(find_tool pebble-challtestsrv "$HINT")
WRK_BIN=$(find_tool wrk "$HINT")
CC=$(find_tool cc "$HINT")
need_tools curl openssl python3 cmp
if ! [[ $CONNS =~ ^[0-9]+$ ]] || ((CONNS < THREADS)); then
    die "CONNS must be a number >= $THREADS (got '$CONNS')"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a number >= 1 (got '$ROUNDS')"

# ---------------------------------------------------------------------------
# 1. Build faztd and faztctl (which deploys the file into faztd).
# ---------------------------------------------------------------------------
build_release "faztd and faztctl" -p faztd -p faztctl
need_binaries "$FAZTD" "$FAZTCTL"

# ---------------------------------------------------------------------------
# 2. Temp dir and cleanup: from here on, every process we start (pebble,
#    pebble-challtestsrv, faztd, nginx, caddy, wrk) is stopped by pid on the
#    way out, however we leave, and $TMP is removed.
# ---------------------------------------------------------------------------
bench_init fazt-bench-tls

# faztd's HTTP and HTTPS ports, nginx's, Caddy's HTTPS and (unused, but it
# must not default to 80) HTTP ports, pebble's ACME and management ports,
# pebble-challtestsrv's DNS and management ports.
read -r PORT_FH PORT_F PORT_N PORT_C PORT_CH PORT_ACME PORT_MGMT PORT_DNS PORT_DNSM \
    < <(free_ports 9)
declare -A PORT=([faztd]=$PORT_F [nginx]=$PORT_N [caddy]=$PORT_C)
SERVERS=(faztd nginx caddy)

# ---------------------------------------------------------------------------
# 3. The content: exactly 1024 bytes of HTML (bench-static.sh's small file).
# ---------------------------------------------------------------------------
SRC=$TMP/site
mkdir -p "$SRC"
{
    printf '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Fazt bench</title></head>\n<body>\n<h1>Fazt TLS benchmark</h1>\n'
    for i in $(seq 1 10); do
        printf '<p>Paragraph %02d: the quick brown fox jumps over the lazy dog.</p>\n' "$i"
    done
} >"$TMP/head.part"
footer=$'</body>\n</html>\n'
pad=$((1024 - $(wc -c <"$TMP/head.part") - ${#footer} - 8)) # 8 = "<!--" + "-->\n"
((pad >= 0)) || die "$FILE template is over 1 KiB"
{
    cat "$TMP/head.part"
    printf '<!--%s-->\n' "$(printf '%*s' "$pad" '' | tr ' ' 'x')"
    printf '%s' "$footer"
} >"$SRC/$FILE"
rm "$TMP/head.part"
[[ $(wc -c <"$SRC/$FILE") -eq 1024 ]] || die "$FILE is not 1024 bytes"

# ---------------------------------------------------------------------------
# Certificate helpers.
# ---------------------------------------------------------------------------

# ossl ARGS...: openssl, quiet unless it fails.
ossl() {
    openssl "$@" >"$TMP/openssl.log" 2>&1 || {
        cat "$TMP/openssl.log" >&2
        die "openssl $1 failed"
    }
}

# key_of CERT: sets KEY_DESC (e.g. "EC prime256v1 256 bit") and KEY_NEW (the
# `openssl req -newkey ...` arguments for a key of the same type and size).
key_of() {
    local text bits curve
    text=$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -noout -text) ||
        die "cannot read the public key of $1"
    bits=$(sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p' <<<"$text" | head -n1)
    curve=$(sed -n 's/^ASN1 OID: *//p' <<<"$text" | head -n1)
    if [[ -n $curve ]]; then
        KEY_DESC="EC $curve $bits bit"
        KEY_NEW=(-newkey ec -pkeyopt "ec_paramgen_curve:$curve")
    elif grep -q '^Modulus' <<<"$text"; then
        KEY_DESC="RSA $bits bit"
        KEY_NEW=(-newkey "rsa:$bits")
    elif grep -q '^ED25519' <<<"$text"; then
        KEY_DESC="Ed25519"
        KEY_NEW=(-newkey ed25519)
    else
        die "unknown key type in $1: $(head -n1 <<<"$text")"
    fi
}

# served_chain PORT PREFIX: saves the chain a server presents on 127.0.0.1:PORT
# for SNI $NAME as PREFIX-0.pem (the leaf), PREFIX-1.pem, ...; prints the
# count. Also writes PREFIX.session: what openssl negotiated.
served_chain() {
    local port=$1 prefix=$2
    openssl s_client -connect "127.0.0.1:$port" -servername "$NAME" -showcerts \
        </dev/null >"$prefix.session" 2>&1 || true
    awk -v prefix="$prefix" '
        /-----BEGIN CERTIFICATE-----/ { file = prefix "-" n++ ".pem" }
        file != ""                    { print > file }
        /-----END CERTIFICATE-----/   { close(file); file = "" }
        END                           { print n + 0 }' "$prefix.session"
}

# negotiated PREFIX: "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519" from PREFIX.session.
negotiated() {
    awk '
        /^New, / { sub(/,$/, "", $2); proto = $2; cipher = $NF }
        /^(Server|Peer) Temp Key:/ { split($0, a, ": "); split(a[2], b, ","); group = b[1] }
        END { printf "%s %s %s", proto, cipher, group }' "$1.session"
}

# ---------------------------------------------------------------------------
# 4. pebble, the ACME CA, on loopback. Like tests/src/pebble.rs: our own CA
#    and a localhost certificate for pebble's own HTTPS (Debian ships none),
#    which faztd trusts with --acme-root; pebble-challtestsrv answers
#    127.0.0.1 for every name, so pebble validates TLS-ALPN-01 against faztd's
#    HTTPS port for real. PEBBLE_VA_NOSLEEP=1: no random validation delays;
#    PEBBLE_WFE_NONCEREJECT=0: no deliberate bad-nonce errors.
# ---------------------------------------------------------------------------
PEB=$TMP/pebble
mkdir -p "$PEB"
EC_P256=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
ossl req -x509 "${EC_P256[@]}" -keyout "$PEB/ca.key" -out "$PEB/ca.pem" -days 2 \
    -subj "/CN=fazt bench ACME CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req "${EC_P256[@]}" -keyout "$PEB/localhost.key" -out "$PEB/localhost.csr" -subj "/CN=localhost"
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
    "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature" >"$PEB/ext.cnf"
ossl x509 -req -in "$PEB/localhost.csr" -CA "$PEB/ca.pem" -CAkey "$PEB/ca.key" -CAcreateserial \
    -out "$PEB/localhost.pem" -days 2 -extfile "$PEB/ext.cnf"
cat >"$PEB/pebble.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PORT_ACME",
    "managementListenAddress": "127.0.0.1:$PORT_MGMT",
    "certificate": "$PEB/localhost.pem",
    "privateKey": "$PEB/localhost.key",
    "httpPort": $PORT_FH,
    "tlsPort": $PORT_F,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF

log "starting pebble-challtestsrv (DNS on 127.0.0.1:$PORT_DNS) and pebble (ACME on 127.0.0.1:$PORT_ACME)"
"$CHALLTESTSRV" -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$PORT_DNS" \
    -http01 "" -https01 "" -tlsalpn01 "" -management "127.0.0.1:$PORT_DNSM" \
    >"$PEB/challtestsrv.log" 2>&1 &
track_pid $!
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    "$PEBBLE" -config "$PEB/pebble.json" -dnsserver "127.0.0.1:$PORT_DNS" \
    >"$PEB/pebble.log" 2>&1 &
track_pid $!
wait_port "$PORT_DNSM"
wait_port "$PORT_ACME"

# ---------------------------------------------------------------------------
# 5. faztd with HTTPS on, pointed at pebble; deploy the site and wait until
#    faztd has its certificate for bench.fazt.test.
# ---------------------------------------------------------------------------
log "starting faztd (HTTP 127.0.0.1:$PORT_FH, HTTPS 127.0.0.1:$PORT_F, domain $DOMAIN)"
start_faztd "$PORT_FH" --https on --listen-https "127.0.0.1:$PORT_F" --domain "$DOMAIN" \
    --acme-directory "https://127.0.0.1:$PORT_ACME/dir" --acme-root "$PEB/ca.pem"

log "deploying the site '$SITE' with faztctl deploy"
ctl deploy "$SRC" --site "$SITE" >"$TMP/deploy.log" 2>&1 || {
    cat "$TMP/deploy.log" >&2
    die "faztctl deploy failed"
}

log "waiting for faztd's certificate for $NAME (ACME order, TLS-ALPN-01 validation)"
for ((i = 0; ; i++)); do
    grep -q "certificate issued and stored.*name=$NAME " "$TMP/faztd.log" && break
    if ! kill -0 "$FAZTD_PID" 2>/dev/null || ((i >= 600)); then
        cat "$TMP/faztd.log" "$PEB/pebble.log" >&2
        die "faztd got no certificate for $NAME within 60 s"
    fi
    sleep 0.1
done

# The root pebble's issued certificates chain to (new at every start).
curl -sSf --cacert "$PEB/ca.pem" -o "$TMP/pebble-root.pem" "https://127.0.0.1:$PORT_MGMT/roots/0" ||
    die "cannot fetch pebble's issuing root"

# ---------------------------------------------------------------------------
# 6. The chain for nginx and Caddy: made with openssl, mirroring faztd's (the
#    key type and size of every certificate faztd presents, and of pebble's
#    root above them), for the same name.
# ---------------------------------------------------------------------------
CERTS=$TMP/certs
mkdir -p "$CERTS"
N_FAZTD=$(served_chain "$PORT_F" "$CERTS/faztd")
((N_FAZTD >= 1)) || {
    cat "$CERTS/faztd.session" >&2
    die "faztd presented no certificate for $NAME"
}

# Root: the type of pebble's root.
key_of "$TMP/pebble-root.pem"
ossl req -x509 "${KEY_NEW[@]}" -nodes -keyout "$CERTS/ca-$N_FAZTD.key" -out "$CERTS/ca-$N_FAZTD.pem" \
    -days 2 -subj "/CN=fazt bench root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
cp "$CERTS/ca-$N_FAZTD.pem" "$CERTS/root.pem"
printf '%s\n' "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" \
    >"$CERTS/ca.cnf"
# Intermediates, top down: the types of faztd's certificates N-1 .. 1.
for ((i = N_FAZTD - 1; i >= 1; i--)); do
    key_of "$CERTS/faztd-$i.pem"
    ossl req "${KEY_NEW[@]}" -nodes -keyout "$CERTS/ca-$i.key" -out "$CERTS/ca-$i.csr" \
        -subj "/CN=fazt bench intermediate $i"
    ossl x509 -req -in "$CERTS/ca-$i.csr" -CA "$CERTS/ca-$((i + 1)).pem" \
        -CAkey "$CERTS/ca-$((i + 1)).key" -CAcreateserial -out "$CERTS/ca-$i.pem" -days 2 \
        -extfile "$CERTS/ca.cnf"
done
# The leaf: the type of faztd's leaf.
key_of "$CERTS/faztd-0.pem"
LEAF_DESC=$KEY_DESC
LEAF_USAGE=digitalSignature
[[ $KEY_DESC == RSA* ]] && LEAF_USAGE=digitalSignature,keyEncipherment
printf '%s\n' "subjectAltName=DNS:$NAME" "basicConstraints=CA:FALSE" \
    "extendedKeyUsage=serverAuth" "keyUsage=$LEAF_USAGE" >"$CERTS/leaf.cnf"
ossl req "${KEY_NEW[@]}" -nodes -keyout "$CERTS/leaf.key" -out "$CERTS/leaf.csr" -subj "/CN=$NAME"
ossl x509 -req -in "$CERTS/leaf.csr" -CA "$CERTS/ca-1.pem" -CAkey "$CERTS/ca-1.key" \
    -CAcreateserial -out "$CERTS/leaf.pem" -days 2 -extfile "$CERTS/leaf.cnf"
# What nginx and Caddy present: the leaf, then the intermediates.
{
    cat "$CERTS/leaf.pem"
    for ((i = 1; i < N_FAZTD; i++)); do cat "$CERTS/ca-$i.pem"; done
} >"$CERTS/chain.pem"

# ---------------------------------------------------------------------------
# 7. nginx, in the foreground (`daemon off`, so $! is its master and cleanup
#    stops it by that pid), every path it writes inside $TMP. Debian's nginx
#    1.22 leaves TLS 1.3 out of its default ssl_protocols: named here, as
#    rustls and Caddy offer both. Session resumption as nginx ships it
#    (session tickets on).
# ---------------------------------------------------------------------------
NGINX_USER=
if ((EUID == 0)); then
    # Workers would otherwise run as nobody, which cannot read the 0700 temp dir.
    NGINX_USER="user root;"
fi
cat >"$TMP/nginx.conf" <<EOF
$NGINX_USER
daemon off;
worker_processes auto;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;

events {
    worker_connections 4096;
}

http {
    types {
        text/html html;
    }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;

    client_body_temp_path $TMP/nginx-client-body;
    proxy_temp_path $TMP/nginx-proxy;
    fastcgi_temp_path $TMP/nginx-fastcgi;
    uwsgi_temp_path $TMP/nginx-uwsgi;
    scgi_temp_path $TMP/nginx-scgi;

    server {
        listen 127.0.0.1:$PORT_N ssl http2;
        server_name $NAME;
        ssl_certificate $CERTS/chain.pem;
        ssl_certificate_key $CERTS/leaf.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $SRC;
    }
}
EOF
log "starting nginx on 127.0.0.1:$PORT_N"
# -e: the error log before the config is read (else nginx tries /var/log/nginx).
"$NGINX" -p "$TMP/" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" >"$TMP/nginx.out" 2>&1 &
track_pid $!
wait_port "$PORT_N"

# ---------------------------------------------------------------------------
# 8. Caddy (`caddy run`, in the foreground: tracked by pid), with its admin
#    endpoint off, automatic HTTPS off (no ACME, no redirects: it serves the
#    files it is given), HTTP/1.1 and HTTP/2 (no HTTP/3 listener), and its
#    home, data and config dirs inside $TMP.
# ---------------------------------------------------------------------------
mkdir -p "$TMP/caddy/data" "$TMP/caddy/config"
cat >"$TMP/Caddyfile" <<EOF
{
	admin off
	auto_https off
	storage file_system $TMP/caddy/data/storage
	http_port $PORT_CH
	https_port $PORT_C
	grace_period 1s
	servers {
		protocols h1 h2
	}
}

https://$NAME:$PORT_C {
	bind 127.0.0.1
	tls $CERTS/chain.pem $CERTS/leaf.key
	root * $SRC
	file_server
}
EOF
log "starting caddy on 127.0.0.1:$PORT_C"
HOME=$TMP/caddy XDG_DATA_HOME=$TMP/caddy/data XDG_CONFIG_HOME=$TMP/caddy/config \
    "$CADDY" run --config "$TMP/Caddyfile" --adapter caddyfile >"$TMP/caddy.log" 2>&1 &
track_pid $!
wait_port "$PORT_C"

# ---------------------------------------------------------------------------
# 9. Checks: each server answers https://bench.fazt.test/small.html with the
#    file, over a chain curl verifies (faztd's to pebble's root, the others'
#    to ours), and presents a leaf of the same type in a chain of the same
#    length; show what each negotiates.
# ---------------------------------------------------------------------------
declare -A ROOT=([faztd]=$TMP/pebble-root.pem [nginx]=$CERTS/root.pem [caddy]=$CERTS/root.pem)
declare -A TLS_INFO
for server in "${SERVERS[@]}"; do
    port=${PORT[$server]}
    expect_file "$server https://$NAME/$FILE" "$SRC/$FILE" "https://$NAME:$port/$FILE" \
        --resolve "$NAME:$port:127.0.0.1" --cacert "${ROOT[$server]}"
    n=$(served_chain "$port" "$CERTS/served-$server")
    ((n >= 1)) || die "$server presented no certificate"
    key_of "$CERTS/served-$server-0.pem"
    [[ $n == "$N_FAZTD" && $KEY_DESC == "$LEAF_DESC" ]] ||
        die "$server presents $n certificate(s) with a $KEY_DESC leaf; faztd: $N_FAZTD, $LEAF_DESC"
    TLS_INFO[$server]="$(negotiated "$CERTS/served-$server"), leaf $KEY_DESC, $n certificates"
    log "$server: ${TLS_INFO[$server]}"
done

# ---------------------------------------------------------------------------
# 10. wrk, its name hook and the handshake shim.
# ---------------------------------------------------------------------------

# Connect to 127.0.0.1 whatever the URL's host; the host still goes into SNI
# and Host.
cat >"$TMP/loopback.lua" <<'EOF'
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup("127.0.0.1", service)
end
EOF

# The shim: wrk calls SSL_shutdown then SSL_clear when a connection closes
# and keeps that SSL (with its session) for the next one. Count each closed
# connection as full or resumed; with TLS_BENCH_DROP=1, forget the session so
# the next handshake is a full one. Prints the counts when wrk exits.
cat >"$TMP/tls-shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_set_session(SSL *s, SSL_SESSION *session);
int SSL_session_reused(const SSL *s);
int SSL_is_init_finished(const SSL *s);
static unsigned long full, resumed;
int SSL_clear(SSL *s) {
    static int (*real)(SSL *);
    if (!real) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    if (SSL_is_init_finished(s))
        __atomic_add_fetch(SSL_session_reused(s) ? &resumed : &full, 1, __ATOMIC_RELAXED);
    int r = real(s);
    const char *drop = getenv("TLS_BENCH_DROP");
    if (drop && drop[0] == '1') SSL_set_session(s, NULL);
    return r;
}
__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "tls-bench-shim: full %lu resumed %lu\n", full, resumed);
}
EOF
"$CC" -shared -fPIC -O2 -o "$TMP/tls-shim.so" "$TMP/tls-shim.c" -ldl 2>"$TMP/cc.log" || {
    cat "$TMP/cc.log" >&2
    die "cannot compile the wrk shim"
}

# run_wrk runs $WRK: env, so the shim is preloaded into wrk itself (env
# execs wrk: the pid stays the one run_tracked tracks).
WRK=env

# measure SERVER MODE DURATION: one wrk run; MODE is keepalive, full or
# resumed. Sets RPS, P99 (ms), ERRS, N_FULL and N_RESUMED (closed
# connections by kind). Not for $(...): run_wrk tracks wrk's pid.
measure() {
    local server=$1 mode=$2 duration=$3 drop=0 extra=()
    case $mode in
        keepalive) ;;
        full)
            drop=1
            extra=(-H "Connection: close")
            ;;
        resumed) extra=(-H "Connection: close") ;;
        *) die "unknown mode $mode" ;;
    esac
    run_wrk "$TMP/wrk.out" LD_PRELOAD="$TMP/tls-shim.so" TLS_BENCH_DROP=$drop "$WRK_BIN" \
        -t"$THREADS" -c"$CONNS" -d"$duration" --latency -s "$TMP/loopback.lua" "${extra[@]}" \
        "https://$NAME:${PORT[$server]}/$FILE"
    read_wrk "$TMP/wrk.out"
    RPS=$WRK_RPS P99=$WRK_P99_MS ERRS=$WRK_ERRORS
    read -r N_FULL N_RESUMED < <(awk '/^tls-bench-shim:/ { print $3, $5 }' "$TMP/wrk.out")
    [[ -n ${N_RESUMED:-} ]] || {
        cat "$TMP/wrk.out" >&2
        die "the shim reported nothing: was it preloaded into wrk?"
    }
    if ((ERRS > 0)); then
        cat "$TMP/wrk.out" >&2
        log "warning: $server $mode: $ERRS errors or non-2xx responses (see above)"
    fi
}

# ---------------------------------------------------------------------------
# 11. The measurements: a warm-up of each server in each mode, then ROUNDS
#     rounds; in each round every mode runs on every server, the servers'
#     order rotating from round to round, so that the machine's drift hits
#     all three alike.
# ---------------------------------------------------------------------------
MODES=(keepalive full resumed)
for server in "${SERVERS[@]}"; do
    log "$server: warm-up, $WARMUP per mode"
    for mode in "${MODES[@]}"; do
        measure "$server" "$mode" "$WARMUP"
    done
done

RESULTS=$TMP/results
: >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for ((k = 0; k < ${#SERVERS[@]}; k++)); do
        order+=("${SERVERS[(k + r - 1) % ${#SERVERS[@]}]}")
    done
    for mode in "${MODES[@]}"; do
        for server in "${order[@]}"; do
            measure "$server" "$mode" "$DURATION"
            echo "$r $server $mode $RPS $P99 $ERRS $N_FULL $N_RESUMED" >>"$RESULTS"
            log "round $r/$ROUNDS, $server, $mode: $RPS req/s, p99 $(round 3 "$P99") ms," \
                "closed connections: $N_FULL full, $N_RESUMED resumed"
        done
    done
done

# ---------------------------------------------------------------------------
# 12. Report: the table (medians of the rounds), the ratios (medians of the
#     rounds' ratios), the goals, and optionally JSON.
# ---------------------------------------------------------------------------
echo
echo "TLS, 1 KiB file, all on 127.0.0.1: wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS alternating rounds, medians"
for server in "${SERVERS[@]}"; do
    printf '  %-6s %s\n' "$server" "${TLS_INFO[$server]}"
done
python3 - "$RESULTS" "$RESULTS_JSON" "$DURATION" "$CONNS" "$THREADS" "$ROUNDS" <<'EOF'
import json, statistics, sys
path, json_path, duration, conns, threads, rounds = sys.argv[1:]
servers = ["faztd", "nginx", "caddy"]
modes = ["keepalive", "full", "resumed"]
runs = {}  # (round, server, mode) -> dict
for line in open(path):
    r, server, mode, rps, p99, errs, full, resumed = line.split()
    runs[(int(r), server, mode)] = dict(rps=float(rps), p99=float(p99), errors=int(errs),
                                        full=int(full), resumed=int(resumed))
rounds_seen = sorted({k[0] for k in runs})
med = lambda xs: statistics.median(list(xs))
def m(server, mode, key):
    return med(runs[(r, server, mode)][key] for r in rounds_seen)
def ratio(a, b, mode):
    return med(runs[(r, a, mode)]["rps"] / runs[(r, b, mode)]["rps"] for r in rounds_seen)
def share_resumed(server, mode):
    full = sum(runs[(r, server, mode)]["full"] for r in rounds_seen)
    resumed = sum(runs[(r, server, mode)]["resumed"] for r in rounds_seen)
    return 100.0 * resumed / (full + resumed) if full + resumed else 0.0

print()
head = f"{'server':<7}| {'keep-alive req/s':>16} | {'p99 ms':>7} | {'full handshakes/s':>17} | {'resumed conn/s':>14} | {'resumed %':>9}"
print(head)
print("-" * len(head))
for s in servers:
    print(f"{s:<7}| {m(s, 'keepalive', 'rps'):>16.0f} | {m(s, 'keepalive', 'p99'):>7.2f} | "
          f"{m(s, 'full', 'rps'):>17.0f} | {m(s, 'resumed', 'rps'):>14.0f} | {share_resumed(s, 'resumed'):>8.1f}%")
print()
print("'full handshakes/s': Connection: close, no session offered (the shim checked: "
      + ", ".join(f"{s} {share_resumed(s, 'full'):.1f}% resumed" for s in servers) + ").")
print("'resumed conn/s': Connection: close, wrk offers its session ticket (TLS 1.3 PSK);")
print("'resumed %' is the share of those connections the server did resume.")
errors = {s: sum(v["errors"] for k, v in runs.items() if k[1] == s) for s in servers}
if any(errors.values()):
    print("errors or non-2xx responses: " + ", ".join(f"{s} {n}" for s, n in errors.items()))

ratios = {}
goals = {("nginx", "keepalive"): 1.0, ("caddy", "keepalive"): 3.0}
print()
for other in ["nginx", "caddy"]:
    parts = []
    for mode, label in [("keepalive", "keep-alive"), ("full", "full handshakes"), ("resumed", "resumed")]:
        x = ratio("faztd", other, mode)
        ratios[f"faztd/{other}/{mode}"] = round(x, 3)
        goal = goals.get((other, mode))
        verdict = f" (goal >= {goal:.1f}x: {'PASS' if x >= goal else 'MISS'})" if goal else ""
        parts.append(f"{label} {x:.2f}x{verdict}")
    print(f"faztd/{other}: " + "; ".join(parts))

if json_path:
    out = {
        "duration": duration, "connections": int(conns), "threads": int(threads),
        "rounds": int(rounds),
        "medians": {s: {"keepalive_rps": m(s, "keepalive", "rps"),
                        "keepalive_p99_ms": m(s, "keepalive", "p99"),
                        "full_handshakes_per_sec": m(s, "full", "rps"),
                        "resumed_per_sec": m(s, "resumed", "rps"),
                        "resumed_share_pct": round(share_resumed(s, "resumed"), 1)}
                    for s in servers},
        "ratios": ratios,
        "runs": [dict(round=k[0], server=k[1], mode=k[2], **v) for k, v in sorted(runs.items())],
    }
    with open(json_path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
EOF
[[ -z $RESULTS_JSON ]] || log "results written to $RESULTS_JSON"
