#!/usr/bin/env bash
# Compile the Android app's platform-free Kotlin (no android.* / com.google.* / ai.onnxruntime.*
# imports) and its JVM unit tests with a real kotlinc, then run the tests with JUnit 4
# (`make kotlin-check`).
# No Android SDK or Gradle needed: kotlinc comes from npm (kotlin-compiler) into mobile/.kotlin/,
# JUnit 4, Hamcrest and org.json (Android's own implementation, libandroid-json-java) from
# Debian. The activities, ARCore and ONNX Runtime code is not compiled here (needs the SDK).
#
# Environment:
#   ARSIM_METRICS_VECTOR  the metrics vector to test against (default:
#                         mobile/test-vectors/metrics-vector.json), passed as the
#                         `arsim.metricsVector` system property as app/build.gradle.kts does.
# Compiled classes are kept in mobile/.kotlin/classes with a stamp (hash of the sources, the
# compiler version and the class path): an unchanged tree runs the tests without recompiling.
# Output: one line per test class (and the failures). Exit 0 all passed, 1 a compile error or a
# failed test, 2 the check could not run (no JDK, no npm, a missing package): never 1 for that.
set -euo pipefail

KOTLIN_VERSION=2.4.20
# The Kotlin Gradle plugin of mobile/android/build.gradle.kts is 2.0.21: compile with that
# language and API level so that newer-only language features or stdlib API are errors here too.
KOTLIN_LEVEL=2.0

ANDROID_DIR="$(cd "$(dirname "$0")" && pwd)"
MOBILE_DIR="$(dirname "$ANDROID_DIR")"
KDIR="$MOBILE_DIR/.kotlin"
KHOME="$KDIR/node_modules/kotlin-compiler"
SRC_MAIN="$ANDROID_DIR/app/src/main/java/dev/arsim/bench"
SRC_TEST="$ANDROID_DIR/app/src/test/java/dev/arsim/bench"

# The main sources the JVM tests need (all platform-free), and the tests.
MAIN_SOURCES=(Metrics.kt PoseRecord.kt RunParams.kt)
TEST_CLASSES=(MetricsVectorTest PoseRecordTest RecordParamsTest)

JUNIT=/usr/share/java/junit4.jar
HAMCREST=/usr/share/java/hamcrest.jar
ORG_JSON=/usr/share/java/com.android.json.jar # Android's org.json (AOSP libcore rewrite)

say() { echo "kotlin-check: $*"; }
die() { echo "kotlin-check: $*" >&2; exit 2; }  # the check could not run
fail() { echo "kotlin-check: $*" >&2; exit 1; }  # the code failed it

command -v java >/dev/null || die "java not found (install a JDK 17, Debian: openjdk-17-jdk-headless)"

VECTOR="${ARSIM_METRICS_VECTOR:-$MOBILE_DIR/test-vectors/metrics-vector.json}"
[ -f "$VECTOR" ] || die "no metrics vector at $VECTOR"
VECTOR="$(cd "$(dirname "$VECTOR")" && pwd)/$(basename "$VECTOR")"

# --- tools -------------------------------------------------------------------------------
if [ ! -x "$KHOME/bin/kotlinc" ] || ! grep -qx "$KOTLIN_VERSION" "$KHOME/build.txt" 2>/dev/null; then
    command -v npm >/dev/null || die "npm not found: needed for kotlin-compiler@$KOTLIN_VERSION"
    say "installing kotlin-compiler@$KOTLIN_VERSION from npm into $KDIR (about 90 MB)"
    mkdir -p "$KDIR"
    npm install --prefix "$KDIR" --no-save --no-audit --no-fund --loglevel=error \
        "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
    [ -x "$KHOME/bin/kotlinc" ] || die "kotlin-compiler@$KOTLIN_VERSION did not install a kotlinc"
fi

missing=()
[ -f "$JUNIT" ] || missing+=(junit4)
[ -f "$HAMCREST" ] || missing+=(libhamcrest-java)
[ -f "$ORG_JSON" ] || missing+=(libandroid-json-java)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; } \
        || die "missing ${missing[*]}: install these Debian packages (no apt-get or no root here)"
    say "installing Debian ${missing[*]}"
    $sudo apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || die "apt-get could not install ${missing[*]}"
fi
CP="$JUNIT:$HAMCREST:$ORG_JSON"

# --- compile (only when something changed) -------------------------------------------------
sources=()
for f in "${MAIN_SOURCES[@]}"; do
    sources+=("$SRC_MAIN/$f")
    # a guard: these must stay compilable without the Android SDK
    if grep -nE '^import (android|androidx|com\.google|ai\.onnxruntime)\.' "$SRC_MAIN/$f" >&2; then
        die "$f imports Android, ARCore or ONNX Runtime APIs: it cannot be checked on the JVM"
    fi
done
for c in "${TEST_CLASSES[@]}"; do sources+=("$SRC_TEST/$c.kt"); done

CLASSES="$KDIR/classes"
STAMP="$CLASSES/.stamp"
# contents only (not paths): the same tree gives the same stamp from any working directory
stamp="$( { echo "$KOTLIN_VERSION $KOTLIN_LEVEL $CP"; java -version 2>&1 | head -1;
            for f in "${sources[@]}" "$ANDROID_DIR/check.sh"; do echo "$(basename "$f") $(sha256sum <"$f")"; done
          } | sha256sum | cut -d' ' -f1 )"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$stamp" ]; then
    work="$(mktemp -d "$KDIR/compile.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    start=$SECONDS
    if ! "$KHOME/bin/kotlinc" -d "$work/classes" -cp "$CP" -jvm-target 17 \
            -language-version "$KOTLIN_LEVEL" -api-version "$KOTLIN_LEVEL" \
            "${sources[@]}" >"$work/log" 2>&1; then
        cat "$work/log" >&2
        fail "compile failed"
    fi
    # warnings (e.g. the deprecation of language version $KOTLIN_LEVEL) are not errors; show
    # any that point at our sources
    grep -E '^(/|.*\.kt:)[^ ]*: warning' "$work/log" | grep -v 'language version' >&2 || true
    rm -rf "$CLASSES"
    mv "$work/classes" "$CLASSES"
    echo "$stamp" >"$STAMP"
    say "compiled ${#MAIN_SOURCES[@]} main + ${#TEST_CLASSES[@]} test sources in $((SECONDS - start)) s (kotlinc $KOTLIN_VERSION, language $KOTLIN_LEVEL)"
fi

# --- test ----------------------------------------------------------------------------------
RUN_CP="$CLASSES:$KHOME/lib/kotlin-stdlib.jar:$CP"
failed=0
for c in "${TEST_CLASSES[@]}"; do
    if out="$(java -Darsim.metricsVector="$VECTOR" -cp "$RUN_CP" org.junit.runner.JUnitCore "dev.arsim.bench.$c" 2>&1)"; then
        echo "PASS $c: $(grep -oE '^OK \([0-9]+ tests?\)' <<<"$out" | head -1)"
    else
        failed=1
        echo "FAIL $c: $(grep -oE '^Tests run: [0-9]+, +Failures: [0-9]+' <<<"$out" | head -1)"
        # the failures, without JUnit's banner and the stack frames inside JUnit itself
        grep -vE '^(JUnit version|Time: |[.EI]+$|\s+at (org\.junit|java\.base|jdk\.internal|sun\.reflect)|\s*$)' <<<"$out" \
            | sed 's/^/    /' >&2
    fi
done
exit $failed
