#!/bin/sh
# azd post-deploy hook: the Event Grid subscriptions that run the blob triggers (Flex
# Consumption has no polling blob trigger). It needs the deployed code, so it cannot be part of the
# Bicep: the webhook URL carries the host's blobs_extension system key, which exists only once the
# host has started with the code.
#
# Each subscription is written with `az rest` and a request body file (Microsoft.EventGrid
# 2022-06-15): `az eventgrid system-topic event-subscription create` has no flags for dead-lettering
# with the topic's managed identity, and a body file keeps the key off the command line.
# Safe to run again: a PUT creates or replaces the subscription.
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd}"
: "${AZURE_FUNCTION_APP_HOSTNAME:?run through azd}"
: "${EVENT_GRID_SYSTEM_TOPIC_ID:?run through azd (azd provision writes it)}"
: "${DOCUMENT_STORAGE_ACCOUNT_ID:?run through azd}"
: "${EVENT_GRID_DEADLETTER_CONTAINER:?run through azd}"
rg="$AZURE_RESOURCE_GROUP"
app="$AZURE_FUNCTION_APP_NAME"
api_version=2022-06-15
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
umask 077

# The host creates its system keys when it first starts with the deployed code.
blobs_key=""
for attempt in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18; do
  blobs_key=$(az functionapp keys list -g "$rg" -n "$app" --query systemKeys.blobs_extension -o tsv 2>/dev/null || true)
  [ -n "$blobs_key" ] && break
  echo "waiting for the host's blobs_extension key (attempt $attempt of 18)"
  sleep 10
done
[ -n "$blobs_key" ] || { echo "no blobs_extension key on $app after 3 minutes: is the code deployed and the host running?" >&2; exit 1; }

subscribe() {  # subscription name, function name, container, subject suffix ("" for none)
  url="$EVENT_GRID_SYSTEM_TOPIC_ID/eventSubscriptions/$1?api-version=$api_version"
  suffix_filter=""
  if [ -n "$4" ]; then suffix_filter=",
      \"subjectEndsWith\": \"$4\""; fi
  cat > "$workdir/$1.json" <<JSON
{
  "properties": {
    "destination": {
      "endpointType": "WebHook",
      "properties": {
        "endpointUrl": "https://$AZURE_FUNCTION_APP_HOSTNAME/runtime/webhooks/blobs?functionName=Host.Functions.$2&code=$blobs_key"
      }
    },
    "filter": {
      "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
      "subjectBeginsWith": "/blobServices/default/containers/$3/"$suffix_filter
    },
    "eventDeliverySchema": "EventGridSchema",
    "retryPolicy": {
      "maxDeliveryAttempts": 30,
      "eventTimeToLiveInMinutes": 1440
    },
    "deadLetterWithResourceIdentity": {
      "identity": {
        "type": "SystemAssigned"
      },
      "deadLetterDestination": {
        "endpointType": "StorageBlob",
        "properties": {
          "resourceId": "$DOCUMENT_STORAGE_ACCOUNT_ID",
          "blobContainerName": "$EVENT_GRID_DEADLETTER_CONTAINER"
        }
      }
    }
  }
}
JSON
  az rest --method put --url "$url" --body "@$workdir/$1.json" -o none
  rm -f "$workdir/$1.json"

  # The PUT returns while Event Grid validates the webhook; wait for the outcome.
  state=""
  for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
    state=$(az rest --method get --url "$url" --query properties.provisioningState -o tsv)
    case "$state" in
      Succeeded) echo "Event Grid: $1 -> $2"; return 0 ;;
      Failed|Canceled|AwaitingManualAction)
        echo "Event Grid subscription $1 is $state: Event Grid could not validate the webhook of $2." >&2
        echo "Check that the code is deployed and the app is running, then run: azd hooks run postdeploy" >&2
        exit 1 ;;
    esac
    echo "Event Grid: $1 is $state (check $attempt of 12)"
    sleep 10
  done
  echo "Event Grid subscription $1 is still $state after 2 minutes; run azd hooks run postdeploy again" >&2
  exit 1
}

subscribe intake-inbox intake_inbox_blob signing-inbox ""
subscribe intake-batch-manifest intake_batch_manifest signing-batches /manifest.json
subscribe bulk-job bulk_job_uploaded signing-bulk /job.json
