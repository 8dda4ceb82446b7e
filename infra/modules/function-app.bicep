// The function app on Flex Consumption with its user-assigned identity, and every app setting the
// code reads (shared.config.SETTINGS; tests/infra checks that each one is set here by name).
param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param hostStorageName string
param deploymentContainer string
param documentStorageName string
param keyVaultName string
param appInsightsConnectionString string
param pythonVersion string
param maximumInstanceCount int
param instanceMemoryMB int
param connectiveBaseUrl string
@description('Empty: the default host name Azure gives the site.')
param publicBaseUrl string
param defaultInitiator string
param connectiveRateCalls int
param connectiveRateWindowSeconds int
param deleteAfterArchive bool

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource documentStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: documentStorageName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Deployments use Entra ID; publishing with a user name and password stays off. These policies are
// also what turns FTP off: Flex Consumption rejects siteConfig.ftpsState (see docs/DEPLOY.md).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

var keyVaultPrefix = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='

// A separate resource so that PUBLIC_BASE_URL can use the host name Azure gave the site.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    // Host storage, identity-based (no keys, no connection strings).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: hostStorage.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: hostStorage.properties.primaryEndpoints.queue
    AzureWebJobsStorage__tableServiceUri: hostStorage.properties.primaryEndpoints.table
    // Document storage, identity-based; the bindings and shared.storage.clients use this prefix.
    DocumentStorage__credential: 'managedidentity'
    DocumentStorage__clientId: identityClientId
    DocumentStorage__blobServiceUri: documentStorage.properties.primaryEndpoints.blob
    DocumentStorage__queueServiceUri: documentStorage.properties.primaryEndpoints.queue
    DocumentStorage__tableServiceUri: documentStorage.properties.primaryEndpoints.table
    // Telemetry with Entra ID auth (local auth is off on the component).
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // The worker attaches each invocation's trace context (host.json telemetryMode: OpenTelemetry);
    // the app installs the Azure Monitor exporters itself (shared/telemetry/setup.py).
    PYTHON_ENABLE_OPENTELEMETRY: 'true'
    TELEMETRY_EXPORTER: 'none'
    TELEMETRY_JSONL_DIR: ''
    // Connective connection.
    CONNECTIVE_BASE_URL: connectiveBaseUrl
    CONNECTIVE_USERNAME: '${keyVaultPrefix}CONNECTIVE-USERNAME)'
    CONNECTIVE_PASSWORD: '${keyVaultPrefix}CONNECTIVE-PASSWORD)'
    CONNECTIVE_CONNECT_TIMEOUT_S: '5'
    CONNECTIVE_READ_TIMEOUT_S: '60'
    CONNECTIVE_RETRY_MAX_ATTEMPTS: '6'
    CONNECTIVE_RETRY_TOTAL_S: '120'
    CONNECTIVE_MULTIPART_THRESHOLD_KB: '1024'
    CONNECTIVE_RATE_CALLS: string(connectiveRateCalls)
    CONNECTIVE_RATE_WINDOW_S: string(connectiveRateWindowSeconds)
    // Every instance draws from one budget, kept in the RateLimits table.
    CONNECTIVE_RATE_LIMITER: 'table'
    CONNECTIVE_RATE_LATENCY_MARGIN_S: '0.1'
    CONNECTIVE_RATE_LEASE_SIZE: '5'
    CONNECTIVE_RATE_LEASE_VALIDITY_S: '1'
    CONNECTIVE_RATE_CLOCK_SKEW_S: '0.05'
    // How long each kind of work may wait for a rate token before it defers.
    CALLBACK_RATE_WAIT_S: '0.05'
    QUEUE_RATE_WAIT_S: '2'
    // A creation attempt's hold on its row; above the longest call (2 + 120 + 5 + 60 s, plus 15).
    CREATION_LEASE_S: '240'
    // Callbacks from Connective.
    PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${site.properties.defaultHostName}' : publicBaseUrl
    CALLBACK_SECRETS: '${keyVaultPrefix}CALLBACK-SECRETS)'
    STATUS_REFRESH_DELAY_S: '10'
    // Intake. Flex Consumption runs blob triggers from Event Grid only.
    BLOB_TRIGGER_SOURCE: 'EventGrid'
    INTAKE_MAX_DOCUMENT_MB: '30'
    ITSME_TARGET_TYPE: 'PdfA2A'
    ROUTING_PROFILES: ''
    DEFAULT_DOCUMENT_LANGUAGE: 'en'
    DEFAULT_INITIATOR: defaultInitiator
    // Archive.
    DELETE_AFTER_ARCHIVE: string(deleteAfterArchive)
    ARCHIVE_RETRY_DELAY_S: '30'
    ARCHIVE_MAX_ATTEMPTS: '8'
    // Scheduled upkeep (NCRONTAB, UTC: Flex Consumption has no time zone setting).
    MAINTENANCE_SCHEDULE: '0 */5 * * * *'
    REMINDER_FIRST_AFTER_H: '48'
    REMINDER_EVERY_H: '48'
    REMINDER_MAX_COUNT: '3'
    EXPIRY_WINDOW_H: '24'
    EXPIRY_EXTEND_DAYS: '7'
    EXPIRY_MAX_EXTENSIONS: '2'
    RECONCILE_AFTER_H: '6'
    MAINTENANCE_RATE_SHARE: '0.3'
    BULK_RATE_SHARE: '0.7'
    BULK_STEP_ROWS: '100'
    BULK_REPORT_INTERVAL_S: '30'
    BULK_MAX_ROWS: '50000'
    MAINTENANCE_TIME_BUDGET_S: '240'
    MAINTENANCE_SWEEP_EVERY_MIN: '60'
    STUCK_CREATION_AFTER_MIN: '30'
    ARCHIVE_STUCK_AFTER_MIN: '15'
    // HTTP API and webhooks.
    WEBHOOK_SIGNING_SECRET: '${keyVaultPrefix}WEBHOOK-SIGNING-SECRET)'
    WEBHOOK_MAX_ATTEMPTS: '6'
    WEBHOOK_RETRY_BASE_S: '30'
    WEBHOOK_RETRY_MAX_S: '3600'
    WEBHOOK_ALLOW_LOOPBACK: 'false'
    API_MAX_BODY_MB: '40'
    API_LINK_EXPIRY_MIN: '15'
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
