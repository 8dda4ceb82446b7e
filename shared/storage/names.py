"""Names of every container, table and queue the app uses.

Fixed names keep the bindings (which must name their paths at import time) and the code in step.
infra/ creates each of them; a test checks it.
"""

INBOX_CONTAINER = "signing-inbox"
BATCHES_CONTAINER = "signing-batches"
BATCH_MANIFEST_NAME = "manifest.json"  # signing-batches/{batch}/manifest.json starts a batch
BULK_JOB_NAME = "job.json"  # the file whose upload starts a bulk send
# A bulk send's id: its folder in signing-bulk/ and its partition in BulkSends.
BULK_JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
SIGNED_CONTAINER = "signed-documents"
ERRORS_CONTAINER = "signing-errors"
CONFIG_CONTAINER = "signing-config"
STAGING_CONTAINER = "package-staging"
BULK_CONTAINER = "signing-bulk"

PACKAGES_TABLE = "SigningPackages"
EVENTS_TABLE = "PackageEvents"
SCHEDULE_TABLE = "PackageSchedule"
RATE_LIMITS_TABLE = "RateLimits"
SUBSCRIPTIONS_TABLE = "WebhookSubscriptions"
WEBHOOK_DEAD_LETTERS_TABLE = "WebhookDeadLetters"
BULK_SENDS_TABLE = "BulkSends"

PACKAGE_REQUESTS_QUEUE = "package-requests"
STATUS_REFRESH_QUEUE = "status-refresh"
ARCHIVE_REQUESTS_QUEUE = "archive-requests"
WEBHOOK_EVENTS_QUEUE = "webhook-events"
BULK_FEED_QUEUE = "bulk-feed"

# The storage connection (app setting name) that every binding and client of the app uses.
DOCUMENT_STORAGE_CONNECTION = "DocumentStorage"

CONTAINERS = (INBOX_CONTAINER, BATCHES_CONTAINER, SIGNED_CONTAINER, ERRORS_CONTAINER, CONFIG_CONTAINER,
              STAGING_CONTAINER, BULK_CONTAINER)
TABLES = (PACKAGES_TABLE, EVENTS_TABLE, SCHEDULE_TABLE, RATE_LIMITS_TABLE, SUBSCRIPTIONS_TABLE,
          WEBHOOK_DEAD_LETTERS_TABLE, BULK_SENDS_TABLE)
QUEUES = (PACKAGE_REQUESTS_QUEUE, STATUS_REFRESH_QUEUE, ARCHIVE_REQUESTS_QUEUE, WEBHOOK_EVENTS_QUEUE, BULK_FEED_QUEUE)
# Created by the Functions host when a message exhausts its retries; listed so infra documents them.
POISON_QUEUES = tuple(f"{queue}-poison" for queue in QUEUES)
