output "site_url" {
  description = "The site and its API: https://DOMAIN with a domain, else the Query function's URL."
  value       = local.with_domain ? "https://${var.domain}" : google_cloudfunctions2_function.query.service_config[0].uri
}

output "site_ip" {
  description = "With a domain: the address its A record must point at (the certificate is issued once it does)."
  value       = local.with_domain ? google_compute_global_address.site[0].address : null
}

output "query_function" {
  description = "Name of the Query function."
  value       = google_cloudfunctions2_function.query.name
}

output "predict_function" {
  description = "Name of the Predict function."
  value       = google_cloudfunctions2_function.predict.name
}

output "predict_url" {
  description = "Predict's private URL, the push subscription's endpoint."
  value       = google_cloudfunctions2_function.predict.service_config[0].uri
}

output "models_bucket" {
  description = "Bucket for `text2brain model publish --bucket`."
  value       = google_storage_bucket.models.name
}

output "results_bucket" {
  description = "Bucket of the maps and previews."
  value       = google_storage_bucket.results.name
}

output "source_bucket" {
  description = "Bucket of the functions' source archives."
  value       = google_storage_bucket.source.name
}

output "jobs_topic" {
  description = "The job topic."
  value       = google_pubsub_topic.jobs.name
}

output "push_subscription" {
  description = "Predict's push subscription."
  value       = google_pubsub_subscription.predict.name
}

output "dead_letter_subscription" {
  description = "Where failed jobs wait for inspection: gcloud pubsub subscriptions pull SUBSCRIPTION --auto-ack=false."
  value       = google_pubsub_subscription.dead_letter.name
}

output "service_accounts" {
  description = "The service accounts, by role."
  value = {
    query   = data.google_service_account.query.email
    predict = data.google_service_account.predict.email
    push    = data.google_service_account.push.email
    build   = data.google_service_account.build.email
  }
}

# Every IAM grant this configuration makes, for review and for the tests (terraform/tests): a
# grant added without being listed here fails TestTerraformGrantsListed.
output "iam_grants" {
  description = "Every role this configuration grants: on what, to whom."
  value = concat(
    [
      { name = "query_firestore", on = "project", role = google_project_iam_member.query_firestore.role, member = google_project_iam_member.query_firestore.member },
      { name = "query_publisher", on = google_pubsub_topic.jobs.name, role = google_pubsub_topic_iam_member.query_publisher.role, member = google_pubsub_topic_iam_member.query_publisher.member },
      { name = "query_models", on = google_storage_bucket.models.name, role = google_storage_bucket_iam_member.query_models.role, member = google_storage_bucket_iam_member.query_models.member },
      { name = "query_results", on = google_storage_bucket.results.name, role = google_storage_bucket_iam_member.query_results.role, member = google_storage_bucket_iam_member.query_results.member },
      { name = "query_uploads", on = google_storage_bucket.results.name, role = google_storage_bucket_iam_member.query_uploads.role, member = google_storage_bucket_iam_member.query_uploads.member },
      { name = "predict_firestore", on = "project", role = google_project_iam_member.predict_firestore.role, member = google_project_iam_member.predict_firestore.member },
      { name = "predict_models", on = google_storage_bucket.models.name, role = google_storage_bucket_iam_member.predict_models.role, member = google_storage_bucket_iam_member.predict_models.member },
      { name = "predict_results", on = google_storage_bucket.results.name, role = google_storage_bucket_iam_member.predict_results.role, member = google_storage_bucket_iam_member.predict_results.member },
      { name = "predict_invoker", on = google_cloudfunctions2_function.predict.name, role = google_cloud_run_v2_service_iam_member.predict_invoker.role, member = google_cloud_run_v2_service_iam_member.predict_invoker.member },
      { name = "query_public", on = google_cloudfunctions2_function.query.name, role = google_cloud_run_v2_service_iam_member.query_public.role, member = google_cloud_run_v2_service_iam_member.query_public.member },
      { name = "dead_letter_publisher", on = google_pubsub_topic.dead_letter.name, role = google_pubsub_topic_iam_member.dead_letter_publisher.role, member = google_pubsub_topic_iam_member.dead_letter_publisher.member },
      { name = "dead_letter_subscriber", on = google_pubsub_subscription.predict.name, role = google_pubsub_subscription_iam_member.dead_letter_subscriber.role, member = google_pubsub_subscription_iam_member.dead_letter_subscriber.member },
      { name = "build_logs", on = "project", role = google_project_iam_member.build.role, member = google_project_iam_member.build.member },
      { name = "build_source", on = "project", role = google_project_iam_member.build_source.role, member = google_project_iam_member.build_source.member },
      { name = "build_images", on = google_artifact_registry_repository.functions.repository_id, role = google_artifact_registry_repository_iam_member.build.role, member = google_artifact_registry_repository_iam_member.build.member },
    ],
    [for g in google_pubsub_topic_iam_member.scheduler_publisher : { name = "scheduler_publisher", on = google_pubsub_topic.jobs.name, role = g.role, member = g.member }],
  )
}
