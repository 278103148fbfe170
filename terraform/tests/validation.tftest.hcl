# Each bad value is refused by its variable's validation, before anything is planned.

mock_provider "google" {}

variables {
  project_id         = "t2b-test-project"
  model_version      = "nq-beae23216548b0e5"
  onnxruntime_object = "onnxruntime/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/libonnxruntime.so"
}

run "project_id" {
  command = plan
  variables { project_id = "My Project" }
  expect_failures = [var.project_id]
}

run "region" {
  command = plan
  variables { region = "europe" }
  expect_failures = [var.region]
}

run "name_prefix_too_long" {
  command = plan
  variables { name_prefix = "a-prefix-much-too-long-for-accounts" }
  expect_failures = [var.name_prefix]
}

run "model_version" {
  command = plan
  variables { model_version = "Latest Model!" }
  expect_failures = [var.model_version]
}

run "more_model_versions" {
  command = plan
  variables { more_model_versions = ["nn-0123456789abcdef", "Not A Version"] }
  expect_failures = [var.more_model_versions]
}

run "more_model_versions_repeat_the_default" {
  command = plan
  variables { more_model_versions = ["nq-beae23216548b0e5"] }
  expect_failures = [var.more_model_versions]
}

run "onnxruntime_object" {
  command = plan
  variables { onnxruntime_object = "libonnxruntime.so" }
  expect_failures = [var.onnxruntime_object]
}

run "predict_memory" {
  command = plan
  variables { predict_memory = "8GB" }
  expect_failures = [var.predict_memory]
}

run "eight_gib_needs_two_cpus" {
  command = plan
  variables {
    predict_memory = "8Gi"
    predict_cpu    = "1"
  }
  expect_failures = [var.predict_cpu]
}

run "eight_cpus_need_four_gib" {
  command = plan
  variables {
    predict_memory = "1Gi"
    predict_cpu    = "8"
  }
  expect_failures = [var.predict_cpu]
}

run "query_four_cpus_need_two_gib" {
  command = plan
  variables {
    query_memory = "512Mi"
    query_cpu    = "4"
  }
  expect_failures = [var.query_cpu]
}

run "backoff_min_above_max" {
  command = plan
  variables {
    retry_minimum_backoff = "120s"
    retry_maximum_backoff = "60s"
  }
  expect_failures = [var.retry_maximum_backoff]
}

run "predict_timeout_beyond_push_deadline" {
  command = plan
  variables { predict_timeout_seconds = 900 }
  expect_failures = [var.predict_timeout_seconds]
}

run "max_below_min_instances" {
  command = plan
  variables {
    predict_min_instances = 3
    predict_max_instances = 2
  }
  expect_failures = [var.predict_max_instances]
}

run "fractional_concurrency" {
  command = plan
  variables { predict_concurrency = 1.5 }
  expect_failures = [var.predict_concurrency]
}

run "warmup_schedule" {
  command = plan
  variables { warmup_schedule = "every 5 minutes" }
  expect_failures = [var.warmup_schedule]
}

run "max_delivery_attempts" {
  command = plan
  variables { max_delivery_attempts = 3 }
  expect_failures = [var.max_delivery_attempts]
}

run "retry_backoff" {
  command = plan
  variables { retry_maximum_backoff = "20m" }
  expect_failures = [var.retry_maximum_backoff]
}

run "cors_origin_with_path" {
  command = plan
  variables { cors_allowed_origins = ["https://example.org/app"] }
  expect_failures = [var.cors_allowed_origins]
}

run "rate_limit" {
  command = plan
  variables { rate_limit_per_second = 0 }
  expect_failures = [var.rate_limit_per_second]
}

run "new_maps_per_client" {
  command = plan
  variables { new_maps_per_client = { every = "five seconds", burst = 10 } }
  expect_failures = [var.new_maps_per_client]
}

run "upload_retention_days" {
  command = plan
  variables { upload_retention_days = 0 }
  expect_failures = [var.upload_retention_days]
}

run "max_pending_jobs" {
  command = plan
  variables { max_pending_jobs = -1 }
  expect_failures = [var.max_pending_jobs]
}

run "query_cache_entries" {
  command = plan
  variables { query_cache = { entries = -1, hit_flush = "10s" } }
  expect_failures = [var.query_cache]
}

run "query_cache_hit_flush" {
  command = plan
  variables { query_cache = { entries = 100, hit_flush = "0s" } }
  expect_failures = [var.query_cache]
}

run "domain" {
  command = plan
  variables { domain = "https://Example.org/" }
  expect_failures = [var.domain]
}
