#!/bin/sh
# azd post-provision hook: writes the secret values the app settings reference, once.
# Existing secrets are left alone, so running `azd provision` again never rotates anything
# (rotation: docs/DEPLOY.md). Values are passed to az through files, never on a command line.
set -eu

: "${AZURE_KEY_VAULT_NAME:?run through azd: AZURE_KEY_VAULT_NAME is not set}"
vault="$AZURE_KEY_VAULT_NAME"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
umask 077

secret_exists() {
  az keyvault secret show --vault-name "$vault" --name "$1" --query id -o tsv >/dev/null 2>&1
}

store_secret() {  # name, file holding the value
  az keyvault secret set --vault-name "$vault" --name "$1" --file "$2" --encoding utf-8 -o none
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
