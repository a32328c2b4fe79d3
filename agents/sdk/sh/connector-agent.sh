# connector-agent.sh: write a ConnectorHost agent in POSIX shell, with no JSON parser.
#
#   #!/bin/sh
#   . "$(dirname "$0")/../sdk/sh/connector-agent.sh"
#   root=$(ca_field root) || exit
#   ca_log info "listing $root"
#   ca_stats "$(ls "$root" | wc -l)"
#   ca_succeed "$(ca_object root="$root")"
#
# Reading: the host puts the payload's scalar values in the environment (PROTOCOL.md,
# "Environment"): ids as CONNECTOR_HOST_TASK_ID and friends, form field `pageSize` as
# CONNECTOR_HOST_FIELD_PAGESIZE, checkpoint key `commit` as CONNECTOR_HOST_CHECKPOINT_COMMIT,
# child metadata key `page` as CONNECTOR_HOST_METADATA_PAGE. ca_field, ca_checkpoint and
# ca_metadata read them by their JSON names. Nested values are in $CONNECTOR_HOST_PAYLOAD.
#
# Writing: each ca_* message function prints one JSON line on stdout. ca_succeed and ca_fail
# print the result and exit with the code the host maps to the same outcome.
#
# Stopping: on SIGTERM (timeout, host shutdown) the agent reports RETRYABLE_ERROR and exits 75.
# Replace the trap (`trap 'cleanup; ca_fail RETRYABLE_ERROR stopped' TERM`) to clean up first.

# --- reading -----------------------------------------------------------------------------------

# The variable name the host uses for a JSON key: upper case, other characters as "_".
ca__name() {
    printf '%s' "$1" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_'
}

ca__read() { # prefix key default-given default
    eval "ca__set=\${$1$(ca__name "$2")+x}"
    if [ -n "$ca__set" ]; then
        eval "printf '%s\n' \"\$$1$(ca__name "$2")\""
    elif [ "$3" = 1 ]; then
        printf '%s\n' "$4"
    else
        return 1
    fi
}

# ca_field NAME [DEFAULT]: a form field. Without a default, a missing field fails the task
# NON_RETRYABLE_ERROR (the connection's config is wrong), so use `x=$(ca_field x) || exit`.
ca_field() {
    if [ $# -ge 2 ]; then ca__read CONNECTOR_HOST_FIELD_ "$1" 1 "$2"; return; fi
    ca__read CONNECTOR_HOST_FIELD_ "$1" 0 || {
        ca_fail NON_RETRYABLE_ERROR "connection \"${CONNECTOR_HOST_CONNECTION_ID:-?}\" needs the field \"$1\"" >&3
    }
}

# ca_checkpoint KEY [DEFAULT]: a key of the last committed checkpoint (empty when none).
ca_checkpoint() { ca__read CONNECTOR_HOST_CHECKPOINT_ "$1" 1 "${2-}"; }

# ca_metadata KEY [DEFAULT]: a key of the metadata the parent gave this child.
ca_metadata() { ca__read CONNECTOR_HOST_METADATA_ "$1" 1 "${2-}"; }

ca_is_root() { [ "${CONNECTOR_HOST_IS_ROOT_TASK:-0}" = 1 ]; }
ca_is_incremental() { case "${CONNECTOR_HOST_TASK_TYPE:-}" in *_incremental) return 0 ;; *) return 1 ;; esac; }

# --- building JSON -----------------------------------------------------------------------------

# ca_json_string TEXT: TEXT as a JSON string, quotes included.
ca_json_string() {
    printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037' |
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e 's/\r/\\r/g' |
        awk 'BEGIN { printf "%s", "\"" } NR > 1 { printf "%s", "\\n" } { printf "%s", $0 } END { printf "%s", "\"" }'
}

# ca_object KEY=STRING KEY:=JSON ...: a JSON object; `=` quotes the value, `:=` takes it as JSON.
ca_object() {
    ca__out="{"
    ca__sep=""
    for ca__pair in "$@"; do
        case "$ca__pair" in
            *:=*) ca__key=${ca__pair%%:=*}; ca__value=${ca__pair#*:=} ;;
            *=*) ca__key=${ca__pair%%=*}; ca__value=$(ca_json_string "${ca__pair#*=}") ;;
            *) echo "ca_object: '$ca__pair' is not KEY=VALUE or KEY:=JSON" >&2; return 64 ;;
        esac
        ca__out="$ca__out$ca__sep$(ca_json_string "$ca__key"):$ca__value"
        ca__sep=","
    done
    printf '%s}\n' "$ca__out"
}

# --- messages ----------------------------------------------------------------------------------

# ca_log LEVEL MESSAGE (debug, info, warning, error)
ca_log() { printf '{"type":"log","level":%s,"message":%s}\n' "$(ca_json_string "$1")" "$(ca_json_string "$2")"; }

# ca_progress MESSAGE [DONE [TOTAL]]
ca_progress() {
    printf '{"type":"progress","message":%s%s%s}\n' "$(ca_json_string "$1")" "${2:+,\"done\":$2}" "${3:+,\"total\":$3}"
}

# ca_stats RECORDS [BYTES]
ca_stats() { printf '{"type":"stats","records":%s%s}\n' "$1" "${2:+,\"bytes\":$2}"; }

# ca_child KEY [METADATA_JSON [TASK_TYPE]]: schedule a child; derive KEY from what it covers.
ca_child() {
    printf '{"type":"child","key":%s%s%s}\n' "$(ca_json_string "$1")" "${2:+,\"metadata\":$2}" \
        "${3:+,\"taskType\":$(ca_json_string "${3:-}")}"
}

# ca_save_checkpoint JSON: stage the next run's checkpoint (committed only with success).
ca_save_checkpoint() { printf '{"type":"checkpoint","metadata":%s}\n' "$1"; }

# ca_succeed [RESULT_JSON]: the success result; exits 0.
ca_succeed() {
    printf '{"type":"result","status":"success"%s}\n' "${1:+,\"result\":$1}"
    exit 0
}

# ca_fail REASON MESSAGE [RETRY_AFTER_SECONDS]: the failure result; exits with the matching code.
ca_fail() {
    printf '{"type":"result","status":"failure","failureReason":%s,"message":%s%s}\n' \
        "$(ca_json_string "$1")" "$(ca_json_string "$2")" "${3:+,\"retryAfterSeconds\":$3}"
    case "$1" in
        RETRYABLE_ERROR | RATE_LIMITED) exit 75 ;;
        UNAUTHORIZED | AUTH_TOKEN_EXPIRED | AUTH_TOKEN_REVOKED) exit 77 ;;
        *) exit 78 ;;
    esac
}

# fd 3 is the real stdout, so ca_field can report a failure from inside $(...).
exec 3>&1
trap 'echo "agent: SIGTERM received; stopping" >&2; ca_fail RETRYABLE_ERROR "stopped by SIGTERM before finishing" >&3' TERM
trap 'ca_fail RETRYABLE_ERROR "stopped by SIGINT before finishing" >&3' INT
