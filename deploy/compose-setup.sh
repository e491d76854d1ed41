#!/usr/bin/env bash
# One-shot setup for the compose demo (deploy/compose.yaml, service `setup`).
# Runs `cairn admin` against each instance's database in turn; the admin
# commands work while the instances run. Safe to run more than once.
set -euo pipefail

# on INSTANCE CMD...: run CMD with INSTANCE's configuration (the same
# variables compose gives the instance itself).
on() {
    local instance=$1
    shift
    CAIRN_DOMAIN="$instance:8080" \
        CAIRN_DATABASE_URL="postgres://cairn:cairn@postgres/$instance" \
        "$@"
}

# Creating something that already exists fails; on a re-run that is expected.
create() {
    local instance=$1
    shift
    if on "$instance" cairn admin "$@"; then
        echo "[$instance] created: $*"
    else
        echo "[$instance] not created (already there?): $*"
    fi
}

for instance in stirling falkirk national; do
    create "$instance" create-community hwb --display-name "Health and Wellbeing"
    create "$instance" create-community cpdlead --display-name "CPD Leadership"
done

echo "[stirling] demo teacher (the line below is their API token):"
create stirling create-member demo --display-name "Demo Teacher"

# National's communities follow the same-tag communities of each local one.
links=$(on national cairn admin links)
for instance in stirling falkirk; do
    if grep -q "$instance:8080" <<<"$links"; then
        echo "[national] already linked to http://$instance:8080"
    else
        on national cairn admin link "http://$instance:8080"
    fi
done
on national cairn admin links

cat <<'EOF'

Cairn demo ready:
  Stirling  http://localhost:8081
  Falkirk   http://localhost:8082
  National  http://localhost:8080
Post as the demo teacher (TOKEN printed above):
  curl -H "Authorization: Bearer TOKEN" -H 'Content-Type: application/json' \
       -d '{"content": "Our wellbeing check-in routine #hwb"}' \
       http://localhost:8081/api/v1/posts
then see it at http://localhost:8080/api/v1/communities/hwb/posts
EOF
