data "google_project" "this" {
  project_id = var.project_id
}

locals {
  prefix = var.name_prefix

  # Google-managed service agents that act on our resources.
  pubsub_agent    = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  scheduler_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"

  with_domain = var.domain != ""

  # The warm-up schedule is pointless while Predict keeps an instance of its own.
  warmup_enabled = var.warmup_schedule != "" && var.predict_min_instances == 0

  # What both functions read (functions/internal/serve/config).
  common_env = merge({
    GOOGLE_CLOUD_PROJECT = var.project_id
    T2B_MODEL_URI        = "gs://${google_storage_bucket.models.name}/models/${var.model_version}"
    T2B_RESULTS_BUCKET   = google_storage_bucket.results.name
    T2B_TOPIC            = google_pubsub_topic.jobs.name
    T2B_COLLECTION       = "maps"
    }, length(var.more_model_versions) == 0 ? {} : {
    # The other models served beside the default (Query lists them; Predict loads each on demand).
    T2B_MORE_MODEL_URIS = join(",", [for v in var.more_model_versions : "gs://${google_storage_bucket.models.name}/models/${v}"])
  })
}
