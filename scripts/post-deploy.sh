#!/bin/sh
# azd post-deploy hook. Needs the deployed code, so it cannot be part of the Bicep:
#  1. Event Grid subscriptions that run the two blob triggers (Flex Consumption has no polling),
#     with the host's blobs_extension key in the webhook URL;
#  2. the function key that Connective's callback URLs carry, stored in Key Vault.
# Safe to run again: subscriptions are created or updated, an existing callback key is kept.
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd}"
: "${AZURE_FUNCTION_APP_HOSTNAME:?run through azd}"
: "${AZURE_KEY_VAULT_NAME:?run through azd}"
: "${EVENT_GRID_SYSTEM_TOPIC_NAME:?run through azd}"
: "${DOCUMENT_STORAGE_ACCOUNT_ID:?run through azd}"
: "${EVENT_GRID_DEADLETTER_CONTAINER:?run through azd}"
rg="$AZURE_RESOURCE_GROUP"
app="$AZURE_FUNCTION_APP_NAME"
callback_function="${CALLBACK_FUNCTION_NAME:-connective_callback}"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
umask 077

# The host creates its system keys when it first starts with the deployed code.
blobs_key=""
for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
  blobs_key=$(az functionapp keys list -g "$rg" -n "$app" --query systemKeys.blobs_extension -o tsv 2>/dev/null || true)
  [ -n "$blobs_key" ] && break
  echo "waiting for the blobs_extension key (attempt $attempt)"
  sleep 10
done
[ -n "$blobs_key" ] || { echo "no blobs_extension key on $app: is the code deployed and the host running?" >&2; exit 1; }

subscribe() {  # subscription name, function name, container, optional subject suffix
  endpoint="https://$AZURE_FUNCTION_APP_HOSTNAME/runtime/webhooks/blobs?functionName=Host.Functions.$2&code=$blobs_key"
  suffix_args=""
  if [ -n "${4:-}" ]; then suffix_args="--subject-ends-with $4"; fi
  # shellcheck disable=SC2086  # suffix_args is empty or two words on purpose
  az eventgrid system-topic event-subscription create \
    --resource-group "$rg" --system-topic-name "$EVENT_GRID_SYSTEM_TOPIC_NAME" --name "$1" \
    --endpoint-type webhook --endpoint "$endpoint" \
    --event-delivery-schema eventgridschema \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/$3/" $suffix_args \
    --max-delivery-attempts 30 --event-ttl 1440 \
    --deadletter-identity systemassigned \
    --deadletter-identity-endpoint "$DOCUMENT_STORAGE_ACCOUNT_ID/blobServices/default/containers/$EVENT_GRID_DEADLETTER_CONTAINER" \
    -o none
  echo "Event Grid: $1 -> $2"
}

subscribe intake-inbox intake_inbox_blob signing-inbox
subscribe intake-batch-manifest intake_batch_manifest signing-batches /manifest.json

# Callback function key: created once, kept in Key Vault for CALLBACK_FUNCTION_KEY.
if az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name CALLBACK-FUNCTION-KEY --query id -o tsv >/dev/null 2>&1; then
  echo "Key Vault: CALLBACK-FUNCTION-KEY already set, kept"
else
  az functionapp function keys set -g "$rg" -n "$app" --function-name "$callback_function" \
    --key-name connective-callback --query value -o tsv > "$workdir/key"
  [ -s "$workdir/key" ] || { echo "could not create a key for function $callback_function" >&2; exit 1; }
  az keyvault secret set --vault-name "$AZURE_KEY_VAULT_NAME" --name CALLBACK-FUNCTION-KEY \
    --file "$workdir/key" --encoding utf-8 -o none
  echo "Key Vault: CALLBACK-FUNCTION-KEY set; restarting $app so the Key Vault reference is read again"
  az functionapp restart -g "$rg" -n "$app" -o none
fi
