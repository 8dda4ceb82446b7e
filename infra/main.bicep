// Entry point for `azd provision`: one resource group with everything the function app needs.
// Plain resources only (no registry modules), so the syntax and policy checks in CI see all of it.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; it seeds resource names and tags.')
param environmentName string

@minLength(1)
@description('Azure region for every resource. Flex Consumption must be available there.')
param location string

@description('Full Connective API v3 base URL, https://host[/prefix]/webportalapi/v3.')
param connectiveBaseUrl string

@description('Email of the Connective portal user who initiates packages that name no initiator.')
param defaultInitiator string = ''

@description('Public base URL of the app for callback URLs; empty means https://<default host name>.')
param publicBaseUrl string = ''

@description('Object id of the person or pipeline running azd; it may write Key Vault secrets.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Keep the documents in a second storage account instead of the host storage account.')
param separateDocumentStorage bool = false

@description('Replication of the storage accounts. Zone-redundant unless the region lacks it.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Python version of the Flex Consumption runtime. The app is tested on 3.13; azure-functions 2.x needs 3.13+.')
@allowed([
  '3.13'
  '3.14'
])
param pythonVersion string = '3.13'

@description('Most instances Flex Consumption may scale out to (see docs/DEPLOY.md, "Scaling").')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance in MB. 512 is left out: sites@2024-04-01 refuses it on Flex Consumption.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Calls the Connective connection allows per window.')
param connectiveRateCalls int = 100

@description('Length of the Connective rate window in seconds.')
param connectiveRateWindowSeconds int = 60

@description('Delete packages at Connective once they are archived.')
param deleteAfterArchive bool = false

@description('Resource id of an action group the alert rules notify (docs/OPERATIONS.md); empty: none.')
param alertActionGroupId string = ''

@description('Purge protection on the Key Vault. Turn it off only for throwaway environments.')
param keyVaultPurgeProtection bool = true

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// Every container, table and queue the app uses (shared/storage/names.py; a test keeps them equal).
var documentContainers = [
  'signing-inbox'
  'signing-batches'
  'signed-documents'
  'signing-errors'
  'signing-config'
  'package-staging'
  'signing-bulk'
]
var documentTables = [
  'SigningPackages'
  'PackageEvents'
  'PackageSchedule'
  'RateLimits'
  'WebhookSubscriptions'
  'WebhookDeadLetters'
  'BulkSends'
]
var documentQueues = [
  'package-requests'
  'status-refresh'
  'archive-requests'
  'webhook-events'
  'bulk-feed'
]
// Event Grid puts events it could not deliver here, so no uploaded document is silently dropped.
var deadLetterContainer = 'eventgrid-deadletter'
// Flex Consumption deploys the app package from this container of the host storage account.
var deploymentContainer = 'app-package'

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: resourceGroup
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: resourceGroup
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

// The workbook and alert rules of docs/OPERATIONS.md.
module operations 'modules/operations.bicep' = {
  name: 'operations'
  scope: resourceGroup
  params: {
    appInsightsName: monitoring.outputs.name
    location: location
    tags: tags
    actionGroupId: alertActionGroupId
    callsPerMinute: connectiveRateCalls * 60 / connectiveRateWindowSeconds
  }
}

module hostStorage 'modules/storage-account.bicep' = {
  name: 'host-storage'
  scope: resourceGroup
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    containers: separateDocumentStorage ? [deploymentContainer] : concat([deploymentContainer, deadLetterContainer], documentContainers)
    tables: separateDocumentStorage ? [] : documentTables
    queues: separateDocumentStorage ? [] : documentQueues
    dataPrincipalId: identity.outputs.principalId
    skuName: storageSku
    // The deployer's data role goes to the account that holds the documents.
    deployerPrincipalId: separateDocumentStorage ? '' : principalId
    deployerPrincipalType: principalType
  }
}

module documentStorage 'modules/storage-account.bicep' = if (separateDocumentStorage) {
  name: 'document-storage'
  scope: resourceGroup
  params: {
    name: 'stdoc${resourceToken}'
    location: location
    tags: tags
    containers: concat([deadLetterContainer], documentContainers)
    tables: documentTables
    queues: documentQueues
    dataPrincipalId: identity.outputs.principalId
    skuName: storageSku
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

var documentAccountName = separateDocumentStorage ? documentStorage.outputs.name : hostStorage.outputs.name

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: resourceGroup
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    readerPrincipalId: identity.outputs.principalId
    writerPrincipalId: principalId
    writerPrincipalType: principalType
    purgeProtection: keyVaultPurgeProtection
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: resourceGroup
  params: {
    planName: 'plan-${resourceToken}'
    appName: 'func-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageName: hostStorage.outputs.name
    deploymentContainer: deploymentContainer
    documentStorageName: documentAccountName
    keyVaultName: keyVault.outputs.name
    appInsightsConnectionString: monitoring.outputs.connectionString
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    connectiveBaseUrl: connectiveBaseUrl
    publicBaseUrl: publicBaseUrl
    defaultInitiator: defaultInitiator
    connectiveRateCalls: connectiveRateCalls
    connectiveRateWindowSeconds: connectiveRateWindowSeconds
    deleteAfterArchive: deleteAfterArchive
  }
}

module eventGrid 'modules/event-grid.bicep' = {
  name: 'event-grid'
  scope: resourceGroup
  params: {
    name: 'evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: documentAccountName
  }
}

// azd writes these to the environment; the hook scripts read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output DOCUMENT_STORAGE_ACCOUNT_NAME string = documentAccountName
output DOCUMENT_STORAGE_ACCOUNT_ID string = eventGrid.outputs.storageAccountId
output EVENT_GRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output EVENT_GRID_SYSTEM_TOPIC_ID string = eventGrid.outputs.id
output EVENT_GRID_DEADLETTER_CONTAINER string = deadLetterContainer
