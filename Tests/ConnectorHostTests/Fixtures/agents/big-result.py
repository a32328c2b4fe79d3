#!/usr/bin/env python3
# A legitimate result of about 3 MiB: more than the host keeps in memory while the agent runs.
import json, sys
blob = "".join("%07d," % i for i in range(400000))
sys.stdout.write(json.dumps({"type": "result", "status": "success", "result": {"blob": blob, "end": "here"}}) + "\n")
