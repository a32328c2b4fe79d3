#!/bin/sh
# git-commits: ingests the commits of a local git repository into JSON Lines, incrementally.
#
# Fields: repository (a work tree or bare repository), branch (default HEAD), output (default
# .connector-host/output/<connection>). The full task type writes every commit of the branch to
# commits.full.jsonl; the incremental one writes the commits after the checkpointed commit to
# commits.<from>.jsonl and stages the branch head as the next checkpoint. History rewritten past the
# checkpoint (a force push) falls back to every commit, with a warning. A missing repository or
# branch is ENTITY_NOT_FOUND.
. "$(dirname "$0")/../sdk/sh/connector-agent.sh"

repository=$(ca_field repository) || exit
branch=$(ca_field branch HEAD)
output=$(ca_field output ".connector-host/output/$CONNECTOR_HOST_CONNECTION_ID")

command -v git >/dev/null || ca_fail NON_RETRYABLE_ERROR "git is not installed on this host"
[ -e "$repository" ] || ca_fail ENTITY_NOT_FOUND "repository $repository does not exist"
git -C "$repository" rev-parse --git-dir >/dev/null 2>&1 || ca_fail ENTITY_NOT_FOUND "$repository is not a git repository"
head=$(git -C "$repository" rev-parse --verify --quiet "$branch^{commit}") ||
    ca_fail ENTITY_NOT_FOUND "branch $branch does not exist in $repository"

since=""
if ca_is_incremental; then
    since=$(ca_checkpoint commit)
    if [ -n "$since" ] && ! git -C "$repository" merge-base --is-ancestor "$since" "$head" 2>/dev/null; then
        ca_log warning "checkpoint commit $since is no longer in the history of $branch; ingesting every commit"
        since=""
    fi
fi

if [ "$since" = "$head" ]; then
    ca_stats 0 0
    ca_save_checkpoint "$(ca_object commit="$head")"
    ca_succeed "$(ca_object head="$head" commits:=0)"
fi

if ca_is_incremental; then name="commits.$(printf '%.12s' "${since:-root}").jsonl"; else name="commits.full.jsonl"; fi
mkdir -p "$output" || ca_fail NON_RETRYABLE_ERROR "cannot create $output"
temporary="$output/.$name.tmp"
range=$head
[ -n "$since" ] && range="$since..$head"

# One line per commit, fields split by the unit separator (0x1f), which git never puts in a name,
# a date or a subject; sed escapes for JSON, awk wraps the fields.
if ! git -C "$repository" log --reverse --format='%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s' "$range" |
    tr -d '\000-\010\013\014\016-\036' |
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' |
    awk -F '\037' '{
        n = split($2, parent, " "); parents = ""
        for (i = 1; i <= n; i++) parents = parents (i > 1 ? "," : "") "\"" parent[i] "\""
        printf "{\"sha\":\"%s\",\"parents\":[%s],\"author\":\"%s\",\"email\":\"%s\",\"date\":\"%s\",\"subject\":\"%s\"}\n", $1, parents, $3, $4, $5, $6
    }' \
        >"$temporary"; then
    rm -f "$temporary"
    ca_fail RETRYABLE_ERROR "git log failed in $repository"
fi
mv "$temporary" "$output/$name"
count=$(wc -l <"$output/$name" | tr -d ' ')
bytes=$(wc -c <"$output/$name" | tr -d ' ')

ca_log info "$count commit(s) of $branch ${since:+after $since }into $name"
ca_stats "$count" "$bytes"
ca_is_incremental && ca_save_checkpoint "$(ca_object commit="$head")"
ca_succeed "$(ca_object head="$head" commits:="$count" file="$name")"
