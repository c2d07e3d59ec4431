#!/usr/bin/env bash
# The whole Descent session flow with curl, jq and printf: create, step (JSON and binary),
# read the parameters, export the state, change the learning rate, a conditional step
# refused with 412, delete.
#
#   examples/curl.sh                       # against http://127.0.0.1:8000 (make run)
#   DESCENT_URL=http://host:port examples/curl.sh
#
# Needs bash, curl, jq, and python3 only to print the binary response as numbers.
set -euo pipefail

URL=${DESCENT_URL:-http://127.0.0.1:8000}
JSON='Content-Type: application/json'
BINARY='application/octet-stream'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Create: Adam, float32, server-held parameters. The token is shown only here.
created=$(curl -sf -X POST "$URL/v1/sessions" -H "$JSON" \
  -d '{"optimizer": {"name": "adam", "lr": 0.1}, "dtype": "float32", "params": [1.0, -2.0, 3.0]}')
ID=$(jq -r .id <<<"$created")
AUTH="Authorization: Bearer $(jq -r .token <<<"$created")"
echo "created: $ID"
echo "optimizer: $(jq -c .optimizer <<<"$created")"   # every hyperparameter, defaults resolved

# 2. A step with a JSON body. The new step count is also in the ETag header.
curl -sf -X POST "$URL/v1/sessions/$ID/step" -H "$AUTH" -H "$JSON" \
  -d '{"grads": [0.5, -0.5, 1.0]}' -D "$work/headers" -o "$work/body"
echo "json step: $(jq -c . "$work/body")"
echo "etag: $(grep -i '^etag:' "$work/headers" | cut -d' ' -f2 | tr -d '\r')"

# 3. A step with a binary body: raw little-endian float32 values, 4 bytes each, no header.
#    0.5 = 0x3f000000, -0.5 = 0xbf000000, 1.0 = 0x3f800000, written lowest byte first.
#    (Same bytes: python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<3f", .5, -.5, 1))')
printf '\x00\x00\x00\x3f\x00\x00\x00\xbf\x00\x00\x80\x3f' >"$work/grads.f32"
curl -sf -X POST "$URL/v1/sessions/$ID/step" -H "$AUTH" -H "Content-Type: $BINARY" -H "Accept: $BINARY" \
  --data-binary @"$work/grads.f32" -o "$work/params.f32"
echo "binary step: $(wc -c <"$work/params.f32" | tr -d ' ') bytes = $(python3 -c \
  'import struct, sys; d = sys.stdin.buffer.read(); print(*(f"{v:.7g}" for v in struct.unpack(f"<{len(d) // 4}f", d)))' \
  <"$work/params.f32")"

# 4. Read the parameters the server holds.
echo "params: $(curl -sf "$URL/v1/sessions/$ID/params" -H "$AUTH")"

# 5. Export the whole optimizer state (torch's state names): a checkpoint that PUT restores.
curl -sf "$URL/v1/sessions/$ID/state" -H "$AUTH" -o "$work/state.json"
echo "state: step $(jq .step "$work/state.json"), vectors $(jq -c '.state | keys' "$work/state.json")"

# 6. Change the learning rate mid-run (like param_group["lr"] = 0.01 in torch).
echo "patched lr: $(curl -sf -X PATCH "$URL/v1/sessions/$ID" -H "$AUTH" -H "$JSON" \
  -d '{"optimizer": {"lr": 0.01}}' | jq .optimizer.lr)"

# 7. Conditional steps: If-Match names the step count the session must be at. The session
#    is at step 2, so "1" is refused with 412 and changes nothing; "2" is applied.
status=$(curl -s -X POST "$URL/v1/sessions/$ID/step" -H "$AUTH" -H "$JSON" -H 'If-Match: "1"' \
  -d '{"grads": [0.5, -0.5, 1.0]}' -o "$work/body" -w '%{http_code}')
echo "if-match 1: $status $(jq -r .detail "$work/body")"
echo "if-match 2: $(curl -sf -X POST "$URL/v1/sessions/$ID/step" -H "$AUTH" -H "$JSON" -H 'If-Match: "2"' \
  -d '{"grads": [0.5, -0.5, 1.0]}')"

# 8. Delete the session and all its state.
echo "delete: $(curl -sf -X DELETE "$URL/v1/sessions/$ID" -H "$AUTH" -o /dev/null -w '%{http_code}')"
