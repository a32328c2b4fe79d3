#!/bin/sh
# Prints one pretty-printed JSON document: the whole of stdout is the result.
cat <<'JSON'
{
  "status": "success",
  "nested": {
    "count": 12345678901234567
  }
}
JSON
