#!/usr/bin/env bash
# Browser tests drive Debian's Chromium with Playwright (a Playwright browser
# download does not work offline). Install it when missing and we may.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium; browser tests will be skipped"
else
  echo "chromium not found and not root: browser tests will be skipped (apt-get install chromium)"
fi
exit 0
