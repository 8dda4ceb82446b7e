// Operations on top of Application Insights: the workbook and the alert rules of docs/OPERATIONS.md.
// Both read the app's OpenTelemetry metrics (customMetrics), spans (requests, dependencies) and the
// Functions host's logs (traces).
param appInsightsName string
param location string
param tags object

@description('Resource id of an existing action group that alerts notify; empty: the rules fire without notifying.')
param actionGroupId string = ''

@description('Connective calls the connection allows per minute (the budget line and the budget alert).')
param callsPerMinute int

@description('Callback authentication failures in 5 minutes that count as a burst.')
param callbackAuthFailureBurst int = 20

@description('Share of the rate budget, in percent, that counts as near the limit when sustained for 30 minutes.')
param budgetAlertPercent int = 90

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var workbookContent = replace(loadTextContent('operations-workbook.json'), '__CALLS_PER_MINUTE__', string(callsPerMinute))

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(appInsights.id, 'connective-signing-operations')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Connective signing operations'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: workbookContent
  }
}

var actionGroups = empty(actionGroupId) ? [] : [actionGroupId]

// Each rule: a log query over the App Insights resource, evaluated every 5 minutes. `measure` names
// the query's numeric column (summed over the window); without it the rule counts the query's rows.
var alertRules = [
  {
    name: 'poison-messages'
    title: 'Messages moved to a poison queue'
    description: 'The Functions host moved a queue message to a *-poison queue after 5 failed tries. See docs/OPERATIONS.md, "Poison queue messages".'
    severity: 1
    window: 'PT15M'
    query: 'traces | where message has "-poison" and message has "MaxDequeueCount"'
    measure: ''
    threshold: 0
    periods: 1
  }
  {
    name: 'error-reports'
    title: 'New error reports in signing-errors'
    description: 'An input was refused and an error report was written to signing-errors/. See docs/OPERATIONS.md, "Error reports".'
    severity: 3
    window: 'PT5M'
    query: 'customMetrics | where name == "intake.rejections" | summarize reports = sum(valueSum)'
    measure: 'reports'
    threshold: 0
    periods: 1
  }
  {
    name: 'connective-429'
    title: 'Connective answered 429 (rate limit)'
    description: 'A call was throttled by Connective although every call takes a token from the shared limiter. See docs/OPERATIONS.md, "Connective 429".'
    severity: 2
    window: 'PT5M'
    query: 'customMetrics | where name == "connective.throttled" | summarize throttled = sum(valueSum)'
    measure: 'throttled'
    threshold: 0
    periods: 1
  }
  {
    name: 'callback-auth-failures'
    title: 'Burst of callback authentication failures'
    description: 'Many callbacks or link requests arrived with a wrong token. See docs/OPERATIONS.md, "Callback authentication failures".'
    severity: 2
    window: 'PT5M'
    query: 'customMetrics | where name == "callback.auth_failures" | summarize failures = sum(valueSum)'
    measure: 'failures'
    threshold: callbackAuthFailureBurst
    periods: 1
  }
  {
    name: 'budget-near-limit'
    title: 'Connective rate budget near its limit for 30 minutes'
    description: 'Calls used more than ${budgetAlertPercent}% of the rate budget in six 5-minute windows in a row. See docs/OPERATIONS.md, "Budget near its limit".'
    severity: 3
    window: 'PT5M'
    query: 'customMetrics | where name == "connective.calls" | summarize calls = sum(valueSum) | extend budgetUsedPercent = 100.0 * calls / (5 * ${callsPerMinute})'
    measure: 'budgetUsedPercent'
    threshold: budgetAlertPercent
    periods: 6
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in alertRules: {
  name: 'alert-${rule.name}-${uniqueString(appInsights.id)}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.title
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: rule.window
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: empty(rule.measure) ? 'Count' : 'Total'
          metricMeasureColumn: empty(rule.measure) ? null : rule.measure
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: rule.periods
            minFailingPeriodsToAlert: rule.periods
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}]

output workbookId string = workbook.id
