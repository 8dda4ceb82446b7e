// Event Grid system topic on the document storage account. Flex Consumption runs blob triggers only
// from Event Grid events. The webhook subscriptions need the app's blobs_extension key, which
// exists only once the code is deployed, so scripts/post-deploy.sh creates them.
param name string
param location string
param tags object
param storageAccountName string

// Dead-lettering writes undeliverable events to a container with the topic's own identity.
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, systemTopic.id, blobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = systemTopic.name
output id string = systemTopic.id
output storageAccountId string = account.id
