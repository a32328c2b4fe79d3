#!/bin/sh
# Posts each alert event ConnectorHost sends (JSON on stdin) to a Slack incoming webhook.
# The webhook URL is a secret: configure it as
#   "notify": {"command": ["agents/notify/slack-webhook.sh"],
#              "secrets": {"SLACK_WEBHOOK_URL": {"env": "SLACK_WEBHOOK_URL"}}}
# A non-zero exit makes the host try again later (up to 5 times per event).
set -eu
: "${SLACK_WEBHOOK_URL:?SLACK_WEBHOOK_URL is not set (a secret of the notify command)}"
python3 -c 'import json, sys; print(json.dumps({"text": json.load(sys.stdin)["text"]}))' |
    curl -fsS --max-time 20 -H 'Content-Type: application/json' --data @- "$SLACK_WEBHOOK_URL" > /dev/null
