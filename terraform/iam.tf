# One service account per role, each granted only what it uses, on the resource it uses it on.
# No account here has a project-wide editor, owner or admin role.

# The accounts themselves are made by terraform/bootstrap, which also lets the deployer (and only
# it) act as them: the deployer then needs no right to create accounts or act as any other.
data "google_service_account" "query" {
  account_id = "${local.prefix}-query"
}

data "google_service_account" "predict" {
  account_id = "${local.prefix}-predict"
}

# The identity whose OIDC token the push subscription sends to Predict.
data "google_service_account" "push" {
  account_id = "${local.prefix}-push"
}

# The identity Cloud Build uses to build the functions' images from source.
data "google_service_account" "build" {
  account_id = "${local.prefix}-build"
}

locals {
  # Firestore grants are project-level roles; the condition narrows them to our database.
  firestore_condition = {
    title      = "text2brain database only"
    expression = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.main.name}\""
  }
}

# Query: reads and creates map documents, counts hits.
resource "google_project_iam_member" "query_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = data.google_service_account.query.member

  condition {
    title      = local.firestore_condition.title
    expression = local.firestore_condition.expression
  }
}

# Query: publishes jobs and warm-ups.
resource "google_pubsub_topic_iam_member" "query_publisher" {
  topic  = google_pubsub_topic.jobs.id
  role   = "roles/pubsub.publisher"
  member = data.google_service_account.query.member
}

# Query: reads the bundle's manifest and vocabulary, and serves the stored maps.
resource "google_storage_bucket_iam_member" "query_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = data.google_service_account.query.member
}

resource "google_storage_bucket_iam_member" "query_results" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectViewer"
  member = data.google_service_account.query.member
}

# Query stores the maps people upload to decode, under uploads/ only (create, never overwrite).
resource "google_storage_bucket_iam_member" "query_uploads" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectCreator"
  member = data.google_service_account.query.member

  condition {
    title       = "uploads-only"
    description = "Uploaded maps to decode, nothing else in the results bucket."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.results.name}/objects/uploads/\")"
  }
}

# Predict: claims and completes map documents.
resource "google_project_iam_member" "predict_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = data.google_service_account.predict.member

  condition {
    title      = local.firestore_condition.title
    expression = local.firestore_condition.expression
  }
}

# Predict: loads the bundle and ONNX Runtime.
resource "google_storage_bucket_iam_member" "predict_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = data.google_service_account.predict.member
}

# Predict: creates maps and previews, and can neither read, replace nor delete them.
resource "google_storage_bucket_iam_member" "predict_results" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectCreator"
  member = data.google_service_account.predict.member
}

# Only the push identity may invoke Predict (a 2nd gen function is a Cloud Run service).
resource "google_cloud_run_v2_service_iam_member" "predict_invoker" {
  name     = google_cloudfunctions2_function.predict.service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = data.google_service_account.push.member
}

# Anyone may invoke Query: it is the public site and API.
resource "google_cloud_run_v2_service_iam_member" "query_public" {
  name     = google_cloudfunctions2_function.query.service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Pub/Sub's service agent, for the dead-letter policy, publishes failed jobs to the dead-letter topic and
# acknowledges them on the push subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  subscription = google_pubsub_subscription.predict.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Cloud Scheduler's service agent publishes the warm-up message.
resource "google_pubsub_topic_iam_member" "scheduler_publisher" {
  count = local.warmup_enabled ? 1 : 0

  topic  = google_pubsub_topic.jobs.id
  role   = "roles/pubsub.publisher"
  member = local.scheduler_agent
}

# The build identity: writes build logs, reads the source archive, pushes the images.
resource "google_project_iam_member" "build" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = data.google_service_account.build.member
}

# Cloud Functions copies the archive into a bucket of its own (gcf-v2-sources-NUMBER-REGION)
# before the build reads it, so the build reads objects there too; the condition keeps it to
# those two buckets.
resource "google_project_iam_member" "build_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = data.google_service_account.build.member

  condition {
    title       = "function sources only"
    description = "The text2brain source bucket and the buckets where Cloud Functions stages sources."
    expression = join(" || ", [
      "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.source.name}\")",
      "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-\")",
    ])
  }
}

resource "google_artifact_registry_repository_iam_member" "build" {
  repository = google_artifact_registry_repository.functions.name
  location   = var.region
  role       = "roles/artifactregistry.writer"
  member     = data.google_service_account.build.member
}
