# The plan's properties that matter, on a mock of the google provider (which takes its schema from
# the provider Terraform was initialised with: the real one, or its recorded schema offline).
# `command = apply` only makes the mock fill computed values; nothing is created anywhere.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

variables {
  project_id         = "t2b-test-project"
  region             = "europe-west1"
  model_version      = "nq-beae23216548b0e5"
  onnxruntime_object = "onnxruntime/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/libonnxruntime.so"
}

# The service accounts are made by terraform/bootstrap and read here.
override_data {
  target = data.google_service_account.query
  values = {
    email  = "text2brain-query@t2b-test-project.iam.gserviceaccount.com"
    member = "serviceAccount:text2brain-query@t2b-test-project.iam.gserviceaccount.com"
    name   = "projects/t2b-test-project/serviceAccounts/text2brain-query@t2b-test-project.iam.gserviceaccount.com"
  }
}

override_data {
  target = data.google_service_account.predict
  values = {
    email  = "text2brain-predict@t2b-test-project.iam.gserviceaccount.com"
    member = "serviceAccount:text2brain-predict@t2b-test-project.iam.gserviceaccount.com"
    name   = "projects/t2b-test-project/serviceAccounts/text2brain-predict@t2b-test-project.iam.gserviceaccount.com"
  }
}

override_data {
  target = data.google_service_account.push
  values = {
    email  = "text2brain-push@t2b-test-project.iam.gserviceaccount.com"
    member = "serviceAccount:text2brain-push@t2b-test-project.iam.gserviceaccount.com"
    name   = "projects/t2b-test-project/serviceAccounts/text2brain-push@t2b-test-project.iam.gserviceaccount.com"
  }
}

override_data {
  target = data.google_service_account.build
  values = {
    email  = "text2brain-build@t2b-test-project.iam.gserviceaccount.com"
    member = "serviceAccount:text2brain-build@t2b-test-project.iam.gserviceaccount.com"
    name   = "projects/t2b-test-project/serviceAccounts/text2brain-build@t2b-test-project.iam.gserviceaccount.com"
  }
}

# The functions' URLs and services are computed by Google; fixed here to check what refers to them.
override_resource {
  target = google_cloudfunctions2_function.predict
  values = {
    service_config = {
      uri     = "https://text2brain-predict-abc123-ew.a.run.app"
      service = "text2brain-predict"
    }
  }
}

override_resource {
  target = google_cloudfunctions2_function.query
  values = {
    service_config = {
      uri     = "https://text2brain-query-abc123-ew.a.run.app"
      service = "text2brain-query"
    }
  }
}

run "predict_function" {
  command = apply

  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].available_memory == "8Gi"
    error_message = "Predict must default to 8Gi."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].available_cpu == "2"
    error_message = "8Gi needs 2 vCPU."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].timeout_seconds == 120
    error_message = "Predict's timeout must be predict_timeout_seconds."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].ingress_settings == "ALLOW_INTERNAL_ONLY"
    error_message = "Predict must be private."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.build_config[0].runtime == "go126" && google_cloudfunctions2_function.query.build_config[0].runtime == "go126"
    error_message = "Both functions must run go126, the Go of go.mod."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.build_config[0].entry_point == "Predict" && google_cloudfunctions2_function.query.build_config[0].entry_point == "Query"
    error_message = "The entry points (FUNCTION_TARGET) must be Predict and Query."
  }
  assert {
    condition = (
      google_cloudfunctions2_function.predict.build_config[0].source[0].storage_source[0].object == google_storage_bucket_object.source.name &&
      google_cloudfunctions2_function.query.build_config[0].source[0].storage_source[0].object == google_storage_bucket_object.source.name &&
      google_storage_bucket_object.source.source == "../build/function-source.zip" &&
      startswith(google_storage_bucket_object.source.name, "function-source-")
    )
    error_message = "Both functions must be built from the one archive that make function-source writes."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].environment_variables["T2B_MODEL_URI"] == "gs://t2b-test-project-text2brain-models/models/nq-beae23216548b0e5"
    error_message = "Predict must load the published bundle of model_version."
  }
  assert {
    condition     = !contains(keys(google_cloudfunctions2_function.predict.service_config[0].environment_variables), "T2B_MORE_MODEL_URIS")
    error_message = "Without more_model_versions the functions serve the one model."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].environment_variables["ONNXRUNTIME_LIB"] == "gs://t2b-test-project-text2brain-models/${var.onnxruntime_object}"
    error_message = "Predict must fetch ONNX Runtime from the models bucket."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].service_account_email == "text2brain-predict@t2b-test-project.iam.gserviceaccount.com"
    error_message = "Predict must run as its own service account."
  }
  assert {
    condition = (google_cloudfunctions2_function.predict.build_config[0].service_account == "projects/t2b-test-project/serviceAccounts/text2brain-build@t2b-test-project.iam.gserviceaccount.com" &&
    google_cloudfunctions2_function.query.build_config[0].service_account == google_cloudfunctions2_function.predict.build_config[0].service_account)
    error_message = "Both functions must be built by the build account."
  }
  assert {
    condition = (google_cloudfunctions2_function.predict.build_config[0].environment_variables["CGO_ENABLED"] == "1" &&
    google_cloudfunctions2_function.query.build_config[0].environment_variables["CGO_ENABLED"] == "1")
    error_message = "Both binaries link ONNX Runtime through cgo."
  }
  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_BUILD"] == substr(filesha256("../build/function-source.zip"), 0, 12)
    error_message = "The build is named by the source archive's hash."
  }
}

run "push_subscription" {
  command = apply

  assert {
    condition     = google_pubsub_subscription.predict.push_config[0].push_endpoint == "https://text2brain-predict-abc123-ew.a.run.app"
    error_message = "The push subscription must deliver to Predict's URL."
  }
  assert {
    condition     = google_pubsub_subscription.predict.push_config[0].oidc_token[0].service_account_email == data.google_service_account.push.email
    error_message = "Pushes must carry an OIDC token of the push service account."
  }
  assert {
    condition     = google_pubsub_subscription.predict.push_config[0].oidc_token[0].audience == "https://text2brain-predict-abc123-ew.a.run.app"
    error_message = "The token's audience must be Predict's URL."
  }
  assert {
    condition     = google_pubsub_subscription.predict.topic == google_pubsub_topic.jobs.id
    error_message = "The push subscription must read the job topic."
  }
  assert {
    condition     = google_pubsub_subscription.predict.retry_policy[0].minimum_backoff == "10s" && google_pubsub_subscription.predict.retry_policy[0].maximum_backoff == "300s"
    error_message = "Failed jobs must be retried with backoff."
  }
  assert {
    condition     = google_pubsub_subscription.predict.dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.dead_letter.id && google_pubsub_subscription.predict.dead_letter_policy[0].max_delivery_attempts == 10
    error_message = "A job that fails 10 times must go to the dead-letter topic."
  }
  assert {
    condition     = google_pubsub_subscription.predict.ack_deadline_seconds == google_cloudfunctions2_function.predict.service_config[0].timeout_seconds
    error_message = "Pub/Sub must wait as long as Predict may run."
  }
  assert {
    condition     = google_pubsub_subscription.dead_letter.topic == google_pubsub_topic.dead_letter.id && google_pubsub_subscription.dead_letter.expiration_policy[0].ttl == ""
    error_message = "Dead-lettered jobs must be kept on a subscription that never expires."
  }
  assert {
    condition     = google_pubsub_topic_iam_member.dead_letter_publisher.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com" && google_pubsub_topic_iam_member.dead_letter_publisher.role == "roles/pubsub.publisher"
    error_message = "The Pub/Sub service agent must be able to publish to the dead-letter topic."
  }
  assert {
    condition     = google_pubsub_subscription_iam_member.dead_letter_subscriber.subscription == google_pubsub_subscription.predict.id
    error_message = "The Pub/Sub service agent must be able to acknowledge dead-lettered jobs on the push subscription."
  }
}

run "only_query_is_public" {
  command = apply

  assert {
    condition     = length([for g in output.iam_grants : g if g.member == "allUsers" || g.member == "allAuthenticatedUsers"]) == 1
    error_message = "Exactly one grant may be public."
  }
  assert {
    condition     = google_cloud_run_v2_service_iam_member.query_public.member == "allUsers" && google_cloud_run_v2_service_iam_member.query_public.role == "roles/run.invoker" && google_cloud_run_v2_service_iam_member.query_public.name == "text2brain-query"
    error_message = "Query's service must be invokable by anyone."
  }
  assert {
    condition     = google_cloud_run_v2_service_iam_member.predict_invoker.name == "text2brain-predict" && google_cloud_run_v2_service_iam_member.predict_invoker.member == data.google_service_account.push.member
    error_message = "Only the push service account may invoke Predict."
  }
  assert {
    condition     = length([for g in output.iam_grants : g if g.role == "roles/run.invoker" && g.on == google_cloudfunctions2_function.predict.name]) == 1
    error_message = "Predict must have exactly one invoker."
  }
  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].ingress_settings == "ALLOW_ALL"
    error_message = "Without a domain, Query must take traffic from anywhere."
  }
  assert {
    condition = (google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_TRUSTED_PROXIES"] == "1" &&
    !contains(keys(google_cloudfunctions2_function.query.service_config[0].environment_variables), "T2B_BASE_URL"))
    error_message = "Without a domain, Google's front end appends one address and map URLs stay relative."
  }
}

run "least_privilege" {
  command = apply

  assert {
    condition     = length([for g in output.iam_grants : g if contains(["roles/editor", "roles/owner", "roles/viewer"], g.role) || strcontains(g.role, "admin") || strcontains(g.role, "Admin")]) == 0
    error_message = "No grant may be a basic role (editor, owner, viewer) or an admin role."
  }
  assert {
    condition = toset([for g in output.iam_grants : "${g.role}@${g.on}" if g.member == data.google_service_account.query.member]) == toset([
      "roles/datastore.user@project",
      "roles/pubsub.publisher@text2brain-jobs",
      "roles/storage.objectViewer@t2b-test-project-text2brain-models",
      "roles/storage.objectViewer@t2b-test-project-text2brain-results",
      "roles/storage.objectCreator@t2b-test-project-text2brain-results",
    ])
    error_message = "Query's roles must be exactly: Firestore user, publisher on the job topic, object viewer on the two buckets, creator of uploads."
  }
  assert {
    condition     = google_storage_bucket_iam_member.query_uploads.condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/t2b-test-project-text2brain-results/objects/uploads/\")"
    error_message = "Query may create objects under uploads/ only."
  }
  assert {
    condition = (
      tolist(one([for r in google_storage_bucket.results.lifecycle_rule : one(r.condition) if one(r.action).type == "Delete"]).matches_prefix) == tolist(["uploads/"]) &&
      one([for r in google_storage_bucket.results.lifecycle_rule : one(r.condition) if one(r.action).type == "Delete"]).age == 7
    )
    error_message = "Uploads, and only they, must be deleted after upload_retention_days (7)."
  }
  assert {
    condition = toset([for g in output.iam_grants : "${g.role}@${g.on}" if g.member == data.google_service_account.predict.member]) == toset([
      "roles/datastore.user@project",
      "roles/storage.objectViewer@t2b-test-project-text2brain-models",
      "roles/storage.objectCreator@t2b-test-project-text2brain-results",
    ])
    error_message = "Predict's roles must be exactly: Firestore user, viewer of the models, creator (not overwriter) of results."
  }
  assert {
    condition = toset([for g in output.iam_grants : "${g.role}@${g.on}" if g.member == data.google_service_account.push.member]) == toset([
      "roles/run.invoker@text2brain-predict",
    ])
    error_message = "The push account may only invoke Predict."
  }
  assert {
    condition = toset([for g in output.iam_grants : "${g.role}@${g.on}" if g.member == data.google_service_account.build.member]) == toset([
      "roles/logging.logWriter@project",
      "roles/storage.objectViewer@project",
      "roles/artifactregistry.writer@text2brain-functions",
    ])
    error_message = "The build account may only write logs, read the source and push images."
  }
  assert {
    condition = (strcontains(google_project_iam_member.build_source.condition[0].expression, "projects/_/buckets/t2b-test-project-text2brain-source") &&
    strcontains(google_project_iam_member.build_source.condition[0].expression, "projects/_/buckets/gcf-v2-sources-123456789012-"))
    error_message = "The build may read only the function sources."
  }
  assert {
    condition     = alltrue([for g in output.iam_grants : g.on != "project" || contains(["roles/logging.logWriter", "roles/datastore.user", "roles/storage.objectViewer"], g.role)])
    error_message = "A project-level grant must be one of the few that have no narrower resource."
  }
  assert {
    condition     = google_project_iam_member.query_firestore.condition[0].expression == "resource.name == \"projects/t2b-test-project/databases/(default)\"" && google_project_iam_member.predict_firestore.condition[0].expression == google_project_iam_member.query_firestore.condition[0].expression
    error_message = "Firestore grants must be limited to the text2brain database."
  }
}

run "buckets" {
  command = apply

  assert {
    condition = alltrue([for b in [google_storage_bucket.models, google_storage_bucket.results, google_storage_bucket.source] :
    b.uniform_bucket_level_access && b.public_access_prevention == "enforced" && length(b.lifecycle_rule) > 0])
    error_message = "Every bucket must be private, with uniform access and lifecycle rules."
  }
  assert {
    condition     = google_firestore_database.main.type == "FIRESTORE_NATIVE" && google_firestore_database.main.name == "(default)"
    error_message = "Firestore must be the default database in native mode."
  }
}

run "warmup_schedule" {
  command = apply

  assert {
    condition     = length(google_cloud_scheduler_job.warmup) == 1
    error_message = "With no minimum Predict instance, the warm-up job must exist."
  }
  assert {
    condition     = google_cloud_scheduler_job.warmup[0].pubsub_target[0].topic_name == google_pubsub_topic.jobs.id
    error_message = "The warm-up must go to the job topic, which Predict's subscription reads."
  }
  assert {
    condition     = jsondecode(base64decode(google_cloud_scheduler_job.warmup[0].pubsub_target[0].data)) == { warmup = true }
    error_message = "The warm-up message must be {\"warmup\":true}."
  }
  assert {
    condition     = google_cloud_scheduler_job.warmup[0].schedule == "*/5 * * * *"
    error_message = "The default schedule is every five minutes."
  }
  assert {
    condition     = length([for g in output.iam_grants : g if g.member == "serviceAccount:service-123456789012@gcp-sa-cloudscheduler.iam.gserviceaccount.com" && g.role == "roles/pubsub.publisher"]) == 1
    error_message = "Cloud Scheduler's agent must be able to publish the warm-up."
  }
}

run "warmup_off_with_min_instance" {
  command = apply

  variables {
    predict_min_instances = 1
  }

  assert {
    condition     = length(google_cloud_scheduler_job.warmup) == 0 && length(google_pubsub_topic_iam_member.scheduler_publisher) == 0
    error_message = "A Predict that keeps an instance needs no warm-up job."
  }
  assert {
    condition     = google_cloudfunctions2_function.predict.service_config[0].min_instance_count == 1
    error_message = "predict_min_instances must reach the function."
  }
}

run "warmup_off_by_empty_schedule" {
  command = apply

  variables {
    warmup_schedule = ""
  }

  assert {
    condition     = length(google_cloud_scheduler_job.warmup) == 0
    error_message = "An empty schedule switches the warm-up off."
  }
}

run "no_domain_no_load_balancer" {
  command = apply

  assert {
    condition = (length(google_compute_backend_service.query) + length(google_compute_security_policy.site) +
      length(google_compute_managed_ssl_certificate.site) + length(google_compute_global_forwarding_rule.https) +
    length(google_compute_region_network_endpoint_group.query)) == 0
    error_message = "Without a domain there is no load balancer."
  }
  assert {
    condition     = output.site_url == "https://text2brain-query-abc123-ew.a.run.app"
    error_message = "Without a domain the site is Query's URL."
  }
}

run "domain_adds_load_balancer" {
  command = apply

  variables {
    domain = "text2brain.example.org"
  }

  assert {
    condition     = google_compute_backend_service.query[0].enable_cdn && google_compute_backend_service.query[0].cdn_policy[0].cache_mode == "USE_ORIGIN_HEADERS"
    error_message = "The load balancer must cache with Cloud CDN, as Query's headers say."
  }
  assert {
    condition     = google_compute_backend_service.query[0].security_policy == google_compute_security_policy.site[0].id
    error_message = "Cloud Armor must guard the backend."
  }
  assert {
    condition = (
      one([for r in google_compute_security_policy.site[0].rule : r.rate_limit_options[0] if r.action == "throttle"]).enforce_on_key == "IP" &&
      one([for r in google_compute_security_policy.site[0].rule : r.rate_limit_options[0] if r.action == "throttle"]).exceed_action == "deny(429)" &&
      one([for r in google_compute_security_policy.site[0].rule : r.rate_limit_options[0] if r.action == "throttle"]).rate_limit_threshold[0].count == 600 &&
      one([for r in google_compute_security_policy.site[0].rule : r.rate_limit_options[0] if r.action == "throttle"]).rate_limit_threshold[0].interval_sec == 60
    )
    error_message = "Cloud Armor must limit each client IP to armor_requests_per_minute."
  }
  assert {
    condition     = google_compute_managed_ssl_certificate.site[0].managed[0].domains == tolist(["text2brain.example.org"])
    error_message = "The managed certificate must be for the domain."
  }
  assert {
    condition     = google_compute_region_network_endpoint_group.query[0].network_endpoint_type == "SERVERLESS" && google_compute_region_network_endpoint_group.query[0].cloud_run[0].service == "text2brain-query"
    error_message = "A serverless NEG must point at Query."
  }
  assert {
    condition     = google_compute_global_forwarding_rule.https[0].port_range == "443" && google_compute_global_forwarding_rule.https[0].target == google_compute_target_https_proxy.site[0].id
    error_message = "HTTPS on 443 must reach the proxy."
  }
  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].ingress_settings == "ALLOW_INTERNAL_AND_GCLB"
    error_message = "Behind the load balancer, Query must refuse other traffic."
  }
  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_BASE_URL"] == "https://text2brain.example.org"
    error_message = "Map URLs must be on the domain."
  }
  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_TRUSTED_PROXIES"] == "2"
    error_message = "The load balancer appends the client's address and its own: the client's is second from the end."
  }
  assert {
    condition     = output.site_url == "https://text2brain.example.org"
    error_message = "With a domain the site is https://DOMAIN."
  }
}

run "more_models" {
  command = apply

  variables {
    more_model_versions = ["nn-0123456789abcdef"]
  }

  assert {
    condition = (google_cloudfunctions2_function.predict.service_config[0].environment_variables["T2B_MORE_MODEL_URIS"] == "gs://t2b-test-project-text2brain-models/models/nn-0123456789abcdef" &&
    google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_MORE_MODEL_URIS"] == "gs://t2b-test-project-text2brain-models/models/nn-0123456789abcdef")
    error_message = "Both functions must serve the other published bundles."
  }
}

run "query_settings" {
  command = apply

  variables {
    cors_allowed_origins  = ["https://a.example.org", "https://b.example.org"]
    rate_limit_per_second = 5
    rate_limit_burst      = 12
    new_maps_per_client   = { every = "2s", burst = 4 }
    max_pending_jobs      = 7
    query_cache           = { entries = 200, hit_flush = "3s" }
  }

  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_CORS_ORIGINS"] == "https://a.example.org,https://b.example.org"
    error_message = "The CORS origins must reach Query."
  }
  assert {
    condition = (google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_RATE"] == "5" &&
    google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_RATE_BURST"] == "12")
    error_message = "The rate limits must reach Query."
  }
  assert {
    condition = (google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_PREDICT_EVERY"] == "2s" &&
      google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_PREDICT_BURST"] == "4" &&
    google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_MAX_PENDING"] == "7")
    error_message = "The new-map limit and the pending-job cap must reach Query."
  }
  assert {
    condition = (google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_CACHE_ENTRIES"] == "200" &&
    google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_HIT_FLUSH"] == "3s")
    error_message = "The in-memory cache's size and the hit flush interval must reach Query."
  }
  assert {
    condition     = google_cloudfunctions2_function.query.service_config[0].environment_variables["T2B_TOPIC"] == google_pubsub_topic.jobs.name
    error_message = "Query must publish to the job topic."
  }
}
