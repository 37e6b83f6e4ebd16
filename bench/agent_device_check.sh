#!/usr/bin/env bash
# Device check of the metering agent (docs/usage-api.md#metering-agent) on a host with a real NVIDIA GPU.
#
#   bench/agent_device_check.sh            # from any directory
#   PYTHON=/path/to/python TIMEOUT=60 OUT=/some/dir bench/agent_device_check.sh
#
# Needs nvidia-smi, a loaded driver and nvidia-ml-py (module pynvml) importable by $PYTHON
# (default: .venv/bin/python if present, else python3). Sends nothing: every agent run is
# --once --dry-run. Runs always mode, then busy mode, each under `timeout`, and checks the
# records against nvidia-smi: one per GPU in always mode, aligned 60 s windows, event id
# "<uuid>:<start>", telemetry keys known. If torch with CUDA is importable, it also puts a
# matmul load on GPU 0 and checks that busy mode then reports that card.
# It also reads every card's health twice (docs/hardware-truth.md#sources-and-incidents: the
# NVML event set, the ECC counter, the clock event reasons) and checks no card is lost.
# Outputs (nvidia-smi listing, the JSON documents) are left in $OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
STEP_TIMEOUT="${TIMEOUT:-60}"
OUT_DIR="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT_DIR"
agent() { timeout "$STEP_TIMEOUT" "$PYTHON" -m apps.metering.agent --once --dry-run --log-level DEBUG "$@"; }

echo "== nvidia-smi -L"
timeout "$STEP_TIMEOUT" nvidia-smi -L | tee "$OUT_DIR/nvidia-smi-L.txt"

echo "== agent --once --dry-run --mode always"
agent --mode always >"$OUT_DIR/always.json"
cat "$OUT_DIR/always.json"

echo "== agent --once --dry-run --mode busy"
agent --mode busy >"$OUT_DIR/busy.json"
cat "$OUT_DIR/busy.json"
timeout "$STEP_TIMEOUT" nvidia-smi --query-compute-apps=gpu_uuid,pid --format=csv,noheader \
    >"$OUT_DIR/compute-apps.csv" || true

LOADED=0
if timeout "$STEP_TIMEOUT" "$PYTHON" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    echo "== busy mode with a matmul load on GPU 0"
    timeout 60 "$PYTHON" -c "
import time, torch
x = torch.randn(4096, 4096, device='cuda:0')
end = time.time() + 20
while time.time() < end:
    x = x @ x
    x = x / x.norm()
torch.cuda.synchronize()
" &
    load_pid=$!
    sleep 10
    agent --mode busy >"$OUT_DIR/busy-loaded.json"
    cat "$OUT_DIR/busy-loaded.json"
    wait "$load_pid"
    LOADED=1
else
    echo "== torch with CUDA not importable: skipping the loaded busy-mode check"
fi

echo "== card health (incidents: Xid/ECC events, ECC counter, clock event reasons, lost cards)"
timeout "$STEP_TIMEOUT" "$PYTHON" - "$OUT_DIR" <<'PY'
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apps.metering.agent.incidents import IncidentTracker
from apps.metering.agent.nvml import Nvml

with Nvml() as nvml:
    reads = [nvml.read_health(), nvml.read_health()]
health = [asdict(h) for h in reads[-1]]
(Path(sys.argv[1]) / "health.json").write_text(json.dumps(health, indent=1))
for h in health:
    print(h)
assert health and not any(h["lost"] for h in health), health
tracker = IncidentTracker(throttle_seconds=1)
now = datetime.now(UTC)
print("incidents now:", tracker.observe(reads[0], now), tracker.observe(reads[1], now + timedelta(seconds=1)))
PY

echo "== checks"
"$PYTHON" - "$OUT_DIR" "$LOADED" <<'PY'
import json
import re
import sys
from datetime import datetime
from pathlib import Path

out, loaded = Path(sys.argv[1]), sys.argv[2] == "1"
listed = re.findall(r"^GPU \d+: .*\(UUID: (GPU-[0-9a-fA-F-]+)\)", (out / "nvidia-smi-L.txt").read_text(), re.M)
always = json.loads((out / "always.json").read_text())
busy = json.loads((out / "busy.json").read_text())
apps_file = out / "compute-apps.csv"
apps = {line.split(",")[0].strip() for line in apps_file.read_text().splitlines() if line.strip()} if apps_file.exists() else set()


def check(records):
    for r in records:
        start, end = datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])
        assert r["event_id"] == f"{r['card']}:{r['start']}", r
        assert start.utcoffset() is not None and (end - start).total_seconds() == 60, r
        assert int(start.timestamp()) % 60 == 0, r
        assert set(r["telemetry"]) <= {"utilization_percent", "memory_used_bytes", "energy_mj"}, r


check(always)
check(busy)
assert listed, "nvidia-smi -L listed no GPU"
assert sorted(r["card"] for r in always) == sorted(listed), (listed, always)
assert {r["card"] for r in busy} <= set(listed), busy
if {r["card"] for r in busy} != apps & set(listed):
    print(f"note: busy mode reported {sorted(r['card'] for r in busy)}, nvidia-smi compute apps on {sorted(apps)}"
          " (processes may have come or gone between the two reads, or live in another PID namespace)")
if loaded:
    loaded_records = json.loads((out / "busy-loaded.json").read_text())
    check(loaded_records)
    assert loaded_records, "busy mode reported no card while GPU 0 ran a matmul"
    print(f"loaded: busy mode reported {[r['card'] for r in loaded_records]}")
for r in always:
    print(f"{r['card']}: telemetry {r['telemetry']}")
health = json.loads((out / "health.json").read_text())
assert sorted(h["uuid"] for h in health) == sorted(listed), (listed, health)
print(f"DEVICE CHECK PASSED: {len(always)} GPU(s) in always mode, {len(busy)} busy, health of {len(health)}; outputs in {out}")
PY
