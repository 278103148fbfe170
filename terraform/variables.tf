variable "project_id" {
  description = "The Google Cloud project to deploy into (its ID, not its number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6 to 30 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "The region of the functions, buckets, Pub/Sub push delivery and the scheduler job, e.g. europe-west1."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database (a region such as europe-west1, or a multi-region such as eur3); null uses the region."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^([a-z]+-[a-z]+[0-9]+|nam[0-9]+|eur[0-9]+)$", var.firestore_location))
    error_message = "firestore_location must be a region (europe-west1) or a Firestore multi-region (nam5, eur3)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, topics, buckets, service accounts)."
  type        = string
  default     = "text2brain"

  validation {
    # Service account IDs are at most 30 characters and get a suffix of up to 8 ("-predict").
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 20 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "model_version" {
  description = "The model bundle to serve: the model version that `text2brain model publish` printed (its files are gs://MODELS_BUCKET/models/MODEL_VERSION/)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,62}$", var.model_version))
    error_message = "model_version must be a bundle's model version such as nq-beae23216548b0e5 (lower-case letters, digits and hyphens)."
  }
}

variable "more_model_versions" {
  description = "Other published bundles to serve beside model_version, in the order the API lists them (such as a network's, from `text2brain model build-neural` then `model publish`); the API's default stays model_version."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for v in var.more_model_versions : can(regex("^[a-z0-9][a-z0-9-]{2,62}$", v))]) && !contains(var.more_model_versions, var.model_version) && length(distinct(var.more_model_versions)) == length(var.more_model_versions)
    error_message = "more_model_versions must be distinct bundle model versions such as nn-0123456789abcdef, other than model_version."
  }
}

variable "onnxruntime_object" {
  description = "The ONNX Runtime shared library in the models bucket, as `text2brain model publish` printed it (onnxruntime/SHA256/libonnxruntime.so)."
  type        = string

  validation {
    condition     = can(regex("^onnxruntime/[0-9a-f]{64}/libonnxruntime\\.so$", var.onnxruntime_object))
    error_message = "onnxruntime_object must be the object name `text2brain model publish` printed: onnxruntime/<sha256>/libonnxruntime.so."
  }
}

variable "function_source_zip" {
  description = "The functions' source archive made by `make function-source` (text2brain source-zip), relative to terraform/."
  type        = string
  default     = "../build/function-source.zip"
}

variable "build_id" {
  description = "Name of the build, shown by GET /api/v1/version; \"\" names it by the source archive's hash, so that only a change of the deployed source redeploys."
  type        = string
  default     = ""
}

variable "query_memory" {
  description = "Memory of each Query instance (Cloud Run format: 512Mi, 1Gi)."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[1-9][0-9]*(Mi|Gi)$", var.query_memory))
    error_message = "query_memory must be a size such as 512Mi or 1Gi."
  }
}

variable "query_cpu" {
  description = "vCPUs of each Query instance."
  type        = string
  default     = "1"

  validation {
    # Cloud Run: 4 vCPU need at least 2Gi.
    condition     = contains(["1", "2", "4"], var.query_cpu) && (var.query_cpu != "4" || !contains(["128Mi", "256Mi", "512Mi", "1Gi"], var.query_memory))
    error_message = "query_cpu must be 1, 2 or 4, and 4 needs query_memory of at least 2Gi."
  }
}

variable "query_min_instances" {
  description = "Query instances kept running while idle (0 pays only per use; 1 removes its cold start)."
  type        = number
  default     = 0

  validation {
    condition     = var.query_min_instances >= 0 && var.query_min_instances <= 10 && floor(var.query_min_instances) == var.query_min_instances
    error_message = "query_min_instances must be a whole number from 0 to 10."
  }
}

variable "query_max_instances" {
  description = "The most Query instances at once: the ceiling of the bill under a flood."
  type        = number
  default     = 20

  validation {
    condition     = var.query_max_instances >= 1 && var.query_max_instances <= 1000 && floor(var.query_max_instances) == var.query_max_instances
    error_message = "query_max_instances must be a whole number from 1 to 1000."
  }
}

variable "query_concurrency" {
  description = "Requests one Query instance serves at once (it mostly waits on Firestore)."
  type        = number
  default     = 80

  validation {
    condition     = var.query_concurrency >= 1 && var.query_concurrency <= 1000 && floor(var.query_concurrency) == var.query_concurrency
    error_message = "query_concurrency must be a whole number from 1 to 1000."
  }
}

variable "predict_memory" {
  description = "Memory of each Predict instance. 8Gi by default, the size the model was planned for; 8Gi needs at least 2 vCPU."
  type        = string
  default     = "8Gi"

  validation {
    condition     = contains(["1Gi", "2Gi", "4Gi", "8Gi", "16Gi", "32Gi"], var.predict_memory)
    error_message = "predict_memory must be one of 1Gi, 2Gi, 4Gi, 8Gi, 16Gi, 32Gi."
  }
}

variable "predict_cpu" {
  description = "vCPUs of each Predict instance: at least 2 for more than 4Gi, 4 for more than 8Gi, 6 for more than 16Gi, 8 for more than 24Gi (Cloud Run's rule)."
  type        = string
  default     = "2"

  validation {
    # Cloud Run pairs them both ways: enough CPU for the memory, and enough memory for the CPU.
    condition = contains(["1", "2", "4", "6", "8"], var.predict_cpu) && try(
      tonumber(var.predict_cpu) >= lookup({ "1Gi" = 1, "2Gi" = 1, "4Gi" = 1, "8Gi" = 2, "16Gi" = 4, "32Gi" = 8 }, var.predict_memory, 1) &&
      lookup({ "1Gi" = 1, "2Gi" = 2, "4Gi" = 4, "8Gi" = 8, "16Gi" = 16, "32Gi" = 32 }, var.predict_memory, 0) >= lookup({ "1" = 0, "2" = 0, "4" = 2, "6" = 4, "8" = 4 }, var.predict_cpu, 0),
    false)
    error_message = "predict_cpu must be 1, 2, 4, 6 or 8 and pair with predict_memory: 8Gi needs 2 vCPU, 16Gi 4, 32Gi 8; 4 vCPU need 2Gi, 6 or 8 need 4Gi."
  }
}

variable "predict_timeout_seconds" {
  description = "How long one Predict invocation may run. It is also the push subscription's acknowledgement deadline, which Pub/Sub caps at 600 s."
  type        = number
  default     = 120

  validation {
    condition     = var.predict_timeout_seconds >= 10 && var.predict_timeout_seconds <= 600 && floor(var.predict_timeout_seconds) == var.predict_timeout_seconds
    error_message = "predict_timeout_seconds must be a whole number from 10 to 600 (Pub/Sub's longest push deadline)."
  }
}

variable "predict_min_instances" {
  description = "Predict instances kept warm (0 pays only per use and relies on the warm-up schedule; 1 or more makes the schedule unnecessary, so it is not created)."
  type        = number
  default     = 0

  validation {
    condition     = var.predict_min_instances >= 0 && var.predict_min_instances <= 10 && floor(var.predict_min_instances) == var.predict_min_instances
    error_message = "predict_min_instances must be a whole number from 0 to 10."
  }
}

variable "predict_max_instances" {
  description = "The most Predict instances at once (each 8Gi by default)."
  type        = number
  default     = 5

  validation {
    condition     = var.predict_max_instances >= 1 && var.predict_max_instances <= 100 && floor(var.predict_max_instances) == var.predict_max_instances && var.predict_max_instances >= var.predict_min_instances
    error_message = "predict_max_instances must be a whole number from 1 to 100 and at least predict_min_instances."
  }
}

variable "predict_concurrency" {
  description = "Jobs one Predict instance runs at once; they share one loaded model."
  type        = number
  default     = 4

  validation {
    condition     = var.predict_concurrency >= 1 && var.predict_concurrency <= 100 && floor(var.predict_concurrency) == var.predict_concurrency
    error_message = "predict_concurrency must be a whole number from 1 to 100."
  }
}

variable "warmup_schedule" {
  description = "Cron schedule (five fields) of the warm-up message that keeps a Predict instance loaded; \"\" for none. Not created when predict_min_instances > 0."
  type        = string
  default     = "*/5 * * * *"

  validation {
    condition     = var.warmup_schedule == "" || length(split(" ", trimspace(var.warmup_schedule))) == 5
    error_message = "warmup_schedule must be a five-field cron expression such as \"*/5 * * * *\", or \"\" to switch the warm-up off."
  }
}

variable "warmup_time_zone" {
  description = "Time zone of warmup_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "max_delivery_attempts" {
  description = "Deliveries of one job before Pub/Sub moves it to the dead-letter topic (Pub/Sub allows 5 to 100). 10 with the default backoff is about half an hour: room for a rollout."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100."
  }
}

variable "retry_minimum_backoff" {
  description = "Shortest wait before Pub/Sub redelivers a job that failed (seconds, as \"10s\")."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_minimum_backoff)) && try(tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600, false)
    error_message = "retry_minimum_backoff must be whole seconds such as \"10s\", at most \"600s\"."
  }
}

variable "retry_maximum_backoff" {
  description = "Longest wait before Pub/Sub redelivers a job that failed (seconds, as \"600s\")."
  type        = string
  default     = "300s"

  validation {
    condition = can(regex("^[0-9]+s$", var.retry_maximum_backoff)) && try(
      tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600 &&
      tonumber(trimsuffix(var.retry_maximum_backoff, "s")) >= tonumber(trimsuffix(var.retry_minimum_backoff, "s")),
    false)
    error_message = "retry_maximum_backoff must be whole seconds such as \"300s\", at most \"600s\" and at least retry_minimum_backoff."
  }
}

variable "cors_allowed_origins" {
  description = "Origins allowed to call the API from a browser: [\"*\"] (any: the API is public and uses no credentials) or a list such as [\"https://example.org\"]."
  type        = list(string)
  default     = ["*"]

  validation {
    condition = length(var.cors_allowed_origins) > 0 && alltrue([
      for o in var.cors_allowed_origins : o == "*" || can(regex("^https?://[a-z0-9.-]+(:[0-9]+)?$", o))
    ])
    error_message = "cors_allowed_origins must be [\"*\"] or origins such as https://example.org (scheme and host, no path)."
  }
}

variable "rate_limit_per_second" {
  description = "Requests a second one client address may make to the API (Query's own limit, per instance)."
  type        = number
  default     = 10

  validation {
    condition     = var.rate_limit_per_second > 0
    error_message = "rate_limit_per_second must be positive."
  }
}

variable "rate_limit_burst" {
  description = "Requests one client address may make at once above rate_limit_per_second."
  type        = number
  default     = 30

  validation {
    condition     = var.rate_limit_burst >= 1 && floor(var.rate_limit_burst) == var.rate_limit_burst
    error_message = "rate_limit_burst must be a whole number of at least 1."
  }
}

variable "new_maps_per_client" {
  description = "How often one client address may ask for a map that does not exist yet (a query that costs a prediction), per Query instance: one every `every` (a Go duration such as \"5s\"; \"0s\" for no limit) in bursts of `burst`. Cached answers count only against rate_limit_per_second."
  type = object({
    every = string
    burst = number
  })
  default = { every = "5s", burst = 10 }

  validation {
    condition     = can(regex("^[0-9]+(ms|s|m|h)$", var.new_maps_per_client.every)) && var.new_maps_per_client.burst >= 1 && floor(var.new_maps_per_client.burst) == var.new_maps_per_client.burst
    error_message = "new_maps_per_client.every must be a duration such as \"5s\" and burst a whole number of at least 1."
  }
}

variable "upload_retention_days" {
  description = "Days an uploaded map (to decode) is kept in the results bucket; its decoding's result stays."
  type        = number
  default     = 7

  validation {
    condition     = var.upload_retention_days >= 1 && floor(var.upload_retention_days) == var.upload_retention_days
    error_message = "upload_retention_days must be a whole number of days, at least 1."
  }
}

variable "max_pending_jobs" {
  description = "Jobs one Query instance may have in flight (published, not seen finish) before a query that would publish another gets 503 busy; 0 for no cap."
  type        = number
  default     = 50

  validation {
    condition     = var.max_pending_jobs >= 0 && floor(var.max_pending_jobs) == var.max_pending_jobs
    error_message = "max_pending_jobs must be a whole number, 0 or more."
  }
}

variable "query_cache" {
  description = "Finished maps one Query instance keeps in memory to answer without Firestore (`entries`, about 7 kB each; 0 for none), and how often it writes the hits it counted to Firestore in one batch (`hit_flush`, a Go duration such as \"10s\"; the hit counts it shows lag other instances' by up to that much). Raise query_memory with entries: 5,000 take about 35 MB."
  type = object({
    entries   = number
    hit_flush = string
  })
  default = { entries = 5000, hit_flush = "10s" }

  validation {
    condition     = var.query_cache.entries >= 0 && floor(var.query_cache.entries) == var.query_cache.entries && can(regex("^[1-9][0-9]*(ms|s|m)$", var.query_cache.hit_flush))
    error_message = "query_cache.entries must be a whole number, 0 or more, and hit_flush a positive duration such as \"10s\"."
  }
}

variable "domain" {
  description = "Optional domain of the site (e.g. text2brain.example.org). With one, an HTTPS load balancer with Cloud CDN, a managed certificate and Cloud Armor fronts Query, and Query takes no traffic from elsewhere; point the domain's A record at the site_ip output."
  type        = string
  default     = ""

  validation {
    condition     = var.domain == "" || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain must be empty or a lower-case host name such as text2brain.example.org."
  }
}

variable "armor_requests_per_minute" {
  description = "With a domain: requests a minute one client IP may send through the load balancer before Cloud Armor answers 429."
  type        = number
  default     = 600

  validation {
    condition     = var.armor_requests_per_minute >= 1 && floor(var.armor_requests_per_minute) == var.armor_requests_per_minute
    error_message = "armor_requests_per_minute must be a whole number of at least 1."
  }
}
