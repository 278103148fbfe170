# Both functions are built by Cloud Build from the one source archive (the repository root is a Go
# package whose init() registers both; the entry point sets FUNCTION_TARGET) with the Go runtime
# that go.mod names.
locals {
  go_runtime = "go126"

  build_config = {
    runtime         = local.go_runtime
    service_account = data.google_service_account.build.name
    bucket          = google_storage_bucket.source.name
    object          = google_storage_bucket_object.source.name
    # The root package imports both functions, so both binaries link ONNX Runtime through cgo
    # (github.com/yalue/onnxruntime_go).
    environment = { CGO_ENABLED = "1" }
  }

  # The build shown by /api/v1/version: given, or the source archive's hash, so that a commit that
  # does not change the deployed source does not redeploy Query.
  build_id = var.build_id != "" ? var.build_id : substr(filesha256(var.function_source_zip), 0, 12)
}

# Query: public HTTP. Serves the page and the API, answers from Firestore, publishes jobs.
resource "google_cloudfunctions2_function" "query" {
  name        = "${local.prefix}-query"
  location    = var.region
  description = "text2brain Query: the web page and the JSON API."

  build_config {
    runtime               = local.build_config.runtime
    entry_point           = "Query"
    service_account       = local.build_config.service_account
    docker_repository     = google_artifact_registry_repository.functions.id
    environment_variables = local.build_config.environment

    source {
      storage_source {
        bucket = local.build_config.bucket
        object = local.build_config.object
      }
    }
  }

  service_config {
    available_memory                 = var.query_memory
    available_cpu                    = var.query_cpu
    timeout_seconds                  = 60
    min_instance_count               = var.query_min_instances
    max_instance_count               = var.query_max_instances
    max_instance_request_concurrency = var.query_concurrency
    service_account_email            = data.google_service_account.query.email
    all_traffic_on_latest_revision   = true
    # With a domain, only the load balancer (and so Cloud Armor and the CDN) reaches Query.
    ingress_settings = local.with_domain ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"

    environment_variables = merge(local.common_env, {
      T2B_RATE         = tostring(var.rate_limit_per_second)
      T2B_RATE_BURST   = tostring(var.rate_limit_burst)
      T2B_CORS_ORIGINS = join(",", var.cors_allowed_origins)
      # New maps cost a job each: limited per client, and capped per instance.
      T2B_PREDICT_EVERY = var.new_maps_per_client.every
      T2B_PREDICT_BURST = tostring(var.new_maps_per_client.burst)
      T2B_MAX_PENDING   = tostring(var.max_pending_jobs)
      # Finished maps answered from the instance's memory; their hits written in batches.
      T2B_CACHE_ENTRIES = tostring(var.query_cache.entries)
      T2B_HIT_FLUSH     = var.query_cache.hit_flush
      # How many entries at the end of X-Forwarded-For Google appended: the client's address alone
      # from Cloud Run's front end; behind the load balancer, the client's and then the load
      # balancer's own.
      T2B_TRUSTED_PROXIES = local.with_domain ? "2" : "1"
      T2B_BUILD           = local.build_id
      }, local.with_domain ? {
      T2B_BASE_URL = "https://${var.domain}"
    } : {})
  }

  # Predict rolls out first: a job for a new model version published by a new Query must find a
  # Predict that serves it, or it waits for redeliveries.
  depends_on = [
    google_cloudfunctions2_function.predict,
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
    google_project_iam_member.build_source,
  ]
}

# Predict: private, memory-heavy, invoked only by the push subscription. Keeps a lazily loaded
# model per instance; concurrent jobs share it.
resource "google_cloudfunctions2_function" "predict" {
  name        = "${local.prefix}-predict"
  location    = var.region
  description = "text2brain Predict: turns prediction jobs from Pub/Sub into stored maps."

  build_config {
    runtime               = local.build_config.runtime
    entry_point           = "Predict"
    service_account       = local.build_config.service_account
    docker_repository     = google_artifact_registry_repository.functions.id
    environment_variables = local.build_config.environment

    source {
      storage_source {
        bucket = local.build_config.bucket
        object = local.build_config.object
      }
    }
  }

  service_config {
    available_memory                 = var.predict_memory
    available_cpu                    = var.predict_cpu
    timeout_seconds                  = var.predict_timeout_seconds
    min_instance_count               = var.predict_min_instances
    max_instance_count               = var.predict_max_instances
    max_instance_request_concurrency = var.predict_concurrency
    service_account_email            = data.google_service_account.predict.email
    all_traffic_on_latest_revision   = true
    # Pub/Sub push from this project counts as internal traffic.
    ingress_settings = "ALLOW_INTERNAL_ONLY"

    environment_variables = merge(local.common_env, {
      ONNXRUNTIME_LIB = "gs://${google_storage_bucket.models.name}/${var.onnxruntime_object}"
    })
  }

  depends_on = [
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
    google_project_iam_member.build_source,
  ]
}

# The functions' container images; only the newest few are kept, so idle storage stays small.
resource "google_artifact_registry_repository" "functions" {
  repository_id = "${local.prefix}-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images of the text2brain functions, built by Cloud Functions."

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.apis]
}
