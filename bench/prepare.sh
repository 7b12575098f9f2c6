# Sourced by the bench scripts: wrk (from Debian packages if missing), the test venv with `bao`
# (scripts/test-deps.sh) and the release server. Expects `root` set and the cwd at it.
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
bash scripts/test-deps.sh >/dev/null
cargo build --release --locked -p tresor
