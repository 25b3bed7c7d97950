#!/usr/bin/env bash
# Install the Debian packages the tests drive, if any is missing: chromium (Playwright drives it,
# no browser download), newsboat (a real feed reader), wrk (the HTTP load generator of bench/feeds.py)
# fonts-noto-cjk (Chinese glyphs), and nginx with openssl (tests/deploy runs deploy/nginx.conf as shipped,
# with a certificate made by openssl), postfix and dovecot-imapd (tests/bounces start their own instances on
# loopback with their own configuration; the system services are kept from starting).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v newsboat >/dev/null 2>&1 || missing+=(newsboat)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
[ -x /usr/sbin/postfix ] || missing+=(postfix)
[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Daemons (postfix, dovecot) must not start as system services on ports 25/143/993: policy-rc.d forbids it
# during the install, and postfix is configured as "No configuration" so it has nothing to serve.
policy=/usr/sbin/policy-rc.d
had_policy=0; [ -e "$policy" ] && had_policy=1
[ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get install -y -qq --no-install-recommends "${missing[@]}" fontconfig >/dev/null
[ "$had_policy" = 1 ] || rm -f "$policy"
for service in postfix dovecot; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done
[ -x /usr/sbin/postfix ] && /usr/sbin/postfix status >/dev/null 2>&1 && /usr/sbin/postfix stop >/dev/null 2>&1 || true
[ -x /usr/sbin/dovecot ] && /usr/sbin/dovecot stop >/dev/null 2>&1 || true
