#!/usr/bin/env python3
# Reads its payload (from --payload and CONNECTOR_HOST_PAYLOAD) and echoes what it saw, including
# whether the secret arrived in the environment and stayed out of the payload file.
import json, os, sys, stat
path = sys.argv[sys.argv.index("--payload") + 1]
assert path == os.environ["CONNECTOR_HOST_PAYLOAD"], "payload path differs"
raw = open(path).read()
payload = json.loads(raw)
secret = os.environ.get("API_TOKEN", "")
mode = stat.S_IMODE(os.stat(path).st_mode)
dir_mode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
print("token is " + secret, file=sys.stderr)
print(json.dumps({"type": "result", "status": "success", "result": {
    "payload": payload,
    "payloadPath": path,
    "fileMode": oct(mode), "dirMode": oct(dir_mode),
    "secretInEnv": secret != "",
    "secretInPayload": secret != "" and secret in raw,
    "echo": "the token is " + secret,
    "envKeys": sorted(os.environ.keys()),
    "cwd": os.getcwd(),
}}))
