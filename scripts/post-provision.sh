#!/bin/sh
# azd post-provision hook: writes the secret values the app settings reference, once.
# Existing secrets are left alone, so running `azd provision` again never rotates anything
# (rotation: docs/DEPLOY.md). Values are passed to az through files, never on a command line.
#
# The Key Vault Secrets Officer role that lets the deployer write was assigned by the provisioning
# that just finished; Azure takes a few minutes to apply a new role assignment. Until then Key Vault
# answers 403, so each call is retried with growing waits (KEY_VAULT_RETRY_WAITS, seconds) while the
# answer is "forbidden" or the new vault's name does not resolve yet. Any other error stops the hook.
set -eu

: "${AZURE_KEY_VAULT_NAME:?run through azd: AZURE_KEY_VAULT_NAME is not set}"
vault="$AZURE_KEY_VAULT_NAME"
retry_waits="${KEY_VAULT_RETRY_WAITS:-10 20 30 60 60 60 60 60 60 60 60 60}"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
umask 077

# Runs `az keyvault secret <verb> ...`. Returns 0 on success and 3 when the secret does not exist;
# retries while access is not granted yet; exits the hook on any other error.
vault_call() {
  for wait in $retry_waits give-up; do
    if az keyvault secret "$@" 2>"$workdir/error"; then
      return 0
    fi
    if grep -q 'SecretNotFound' "$workdir/error"; then
      return 3
    fi
    if ! grep -Eq 'Forbidden|ForbiddenByRbac|NameResolutionError|Failed to resolve' "$workdir/error"; then
      cat "$workdir/error" >&2
      exit 1
    fi
    if [ "$wait" = give-up ]; then
      cat "$workdir/error" >&2
      echo "Key Vault $vault still refuses access." >&2
      echo "Check that the account running azd has Key Vault Secrets Officer on the vault" >&2
      echo "(the Bicep assigns it to AZURE_PRINCIPAL_ID), then run: azd hooks run postprovision" >&2
      exit 1
    fi
    echo "Key Vault $vault: no access yet (a new role assignment takes minutes to apply); retrying in ${wait}s" >&2
    sleep "$wait"
  done
}

secret_exists() {
  status=0
  vault_call show --vault-name "$vault" --name "$1" --query id -o tsv >/dev/null || status=$?
  [ "$status" -eq 0 ]
}

store_secret() {  # name, file holding the value
  vault_call set --vault-name "$vault" --name "$1" --file "$2" --encoding utf-8 -o none
  echo "Key Vault $vault: set $1"
}

random_secret() {
  python3 -c 'import secrets; print(secrets.token_urlsafe(48), end="")'
}

# Connective API user: from the environment (a pipeline's secret variables) or asked for.
ask() {  # name, prompt, environment variable, hide input (1|0)
  if secret_exists "$1"; then echo "Key Vault $vault: $1 already set, kept"; return; fi
  value=$(printenv "$3" || true)
  if [ -z "$value" ]; then
    printf '%s: ' "$2" >&2
    if [ "$4" = 1 ]; then stty -echo 2>/dev/null || true; fi
    IFS= read -r value
    if [ "$4" = 1 ]; then stty echo 2>/dev/null || true; printf '\n' >&2; fi
  fi
  [ -n "$value" ] || { echo "$1 is required" >&2; exit 1; }
  printf '%s' "$value" > "$workdir/value"
  store_secret "$1" "$workdir/value"
}

ask CONNECTIVE-USERNAME "Connective API user name" CONNECTIVE_USERNAME 0
ask CONNECTIVE-PASSWORD "Connective API password" CONNECTIVE_PASSWORD 1

# Secrets of our own: generated. The first callback secret signs, all of them verify.
for name in CALLBACK-SECRETS WEBHOOK-SIGNING-SECRET; do
  if secret_exists "$name"; then
    echo "Key Vault $vault: $name already set, kept"
  else
    random_secret > "$workdir/value"
    store_secret "$name" "$workdir/value"
  fi
done
